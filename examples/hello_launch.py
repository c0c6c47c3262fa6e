"""The smallest launcher script: ``crypten-lite-launch -n 2 examples/hello_launch.py``.

It contains no setup code — the launcher gives every party its session. Party 0 holds x,
party 1 holds y; the parties compute relu(x * y) on secret shares and reveal the result.
"""

import numpy as np

import crypten_lite as cl

session = cl.current_session()
x = cl.cryptensor(np.array([1.0, -2.0, 3.0, -4.0]), src=0)
y = cl.cryptensor(np.array([0.5, 0.5, -1.0, -1.0]), src=1 % session.world_size)
z = (x * y).relu().get_plain_text()
print(f"party {session.rank} of {session.world_size}: relu(x * y) = {np.round(z, 3).tolist()}")

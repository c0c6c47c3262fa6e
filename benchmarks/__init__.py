"""crypten-lite-bench: benchmark suites printing a table and writing JSON records."""

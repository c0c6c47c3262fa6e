#!/usr/bin/env bash
# The JVM edge client's command line (io.cryptenlite.edge.Cli); see README.md.
# Build it first, offline:  mvn -o -q -f clients/jvm/pom.xml package
# Extra JVM options: CRYPTEN_LITE_JAVA_OPTS (e.g. "-Xmx256m").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ! -f "$here/target/classpath.txt" || ! -d "$here/target/classes" ]]; then
  echo "error: the JVM client is not built: run mvn -o -q -f $here/pom.xml package" >&2
  exit 1
fi
# target/classpath.txt lists the build's classes directory first (an absolute path from the
# build), then the jars; use this checkout's classes directory instead.
IFS=":" read -r -a entries < "$here/target/classpath.txt" || true  # no final newline
classpath="$here/target/classes"
for entry in "${entries[@]}"; do
  [[ -z "$entry" || "$entry" == */target/classes ]] || classpath+=":$entry"
done
# shellcheck disable=SC2086  # the options are meant to split
exec java ${CRYPTEN_LITE_JAVA_OPTS:-} -cp "$classpath" io.cryptenlite.edge.Cli "$@"

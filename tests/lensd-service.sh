#!/bin/sh
# lensd-service.sh UNIT: systemd-analyze's offline security review of
# lensd's unit must rate its exposure 2.0 or lower (issue 6). Exits 77
# (skipped) where systemd-analyze is missing or lacks --offline (< 250).
unit=${1:?usage: lensd-service.sh UNIT}
limit=2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-analyze not found: skipped"
  exit 77
fi
if ! systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  echo "systemd-analyze security has no --offline: skipped"
  exit 77
fi

out=$(systemd-analyze security --offline=yes "$unit" 2>&1)
status=$?
echo "$out" | tail -n 25
if [ $status -ne 0 ]; then
  echo "FAIL: systemd-analyze security exited with $status"
  exit 1
fi
# "→ Overall exposure level for lensd.service: 1.4 OK 🙂"
score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
  echo "FAIL: no exposure level in systemd-analyze's output"
  exit 1
fi
if awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s <= l) }'; then
  echo "exposure $score <= $limit: ok"
  exit 0
fi
echo "FAIL: exposure $score > $limit"
exit 1

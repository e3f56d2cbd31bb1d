#!/usr/bin/env bash
# The differential test (DifferentialTests: the appliance and redis-server, the same random
# command streams, in kvstore-fcalls and kvstore-parser-vmept2) at SCALE times its CI length:
# CI sends 100,000 commands per data type; SCALE 10 sends a million.
# Usage: Benchmarks/differential.sh [SCALE]   (default 10; CI's length takes about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-10}
if ! [[ "$scale" =~ ^[1-9][0-9]{0,3}$ ]]; then
    echo "usage: Benchmarks/differential.sh [SCALE]   (SCALE: a whole number from 1 to 9999)" >&2
    exit 2
fi
source scripts/setup.sh
swift build
FLEXOS_DIFFERENTIAL_SCALE="$scale" swift test --filter DifferentialTests

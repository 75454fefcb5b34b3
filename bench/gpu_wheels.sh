#!/usr/bin/env bash
# The wheels the GPU machine lacks, into .whl/ (git-ignored): what the toolkit imports on the
# inline path and that image does not hold (optuna and kornia with their own needs), plus the
# setuptools that installs the project there without an index. For Python 3.12, manylinux
# x86_64. Ray is not among them: the GPU check runs searches with --executor inline.
#   bench/gpu_wheels.sh [PYTHON]    (any Python with pip and access to PyPI; default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
wheels=(
    optuna==5.1.0 alembic==1.20.1 colorlog==6.12.0 sqlalchemy==2.1.9 mako==1.4.3
    kornia==0.9.2 kornia_rs==0.2.0
    setuptools==84.2.1
)
rm -rf .whl
mkdir .whl
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${wheels[@]}"
count=$(ls .whl/*.whl | wc -l)
if [ "$count" -ne "${#wheels[@]}" ]; then
    echo "error: ${#wheels[@]} wheels named, $count in .whl/" >&2
    exit 1
fi
ls -l .whl
du -ch .whl/*.whl | tail -n 1

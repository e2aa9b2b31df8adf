#!/usr/bin/env bash
# System packages NTKScape builds and runs against (Debian 12). The one place that lists them:
# README's quick start runs this script; .ci/run installs `scripts/install-deps.sh --list`.
# Uses sudo unless already root.
set -euo pipefail

packages=(
    libopenmpi-dev openmpi-bin                # MPI (Open MPI 4.1)
    libopenblas-dev liblapacke-dev            # BLAS, LAPACK and its C interface
    libscalapack-openmpi-dev                  # ScaLAPACK 2.2 with BLACS, built on Open MPI
    dataset-fashion-mnist                     # Fashion-MNIST in /usr/share/datasets/fashion-mnist
    zlib1g-dev                                # reading .gz data files
    pkg-config                                # SwiftPM finds Open MPI's flags through it
    chromium                                  # headless browser: the report.html rendering test (skipped without it)
)

if [ "${1:-}" = "--list" ]; then echo "${packages[@]}"; exit 0; fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"

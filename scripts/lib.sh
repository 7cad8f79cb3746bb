# Shared by scripts/*: find the repository, install missing Debian packages.
# shellcheck shell=bash

terse_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# terse_need_packages pkg...: installs the Debian packages that are missing,
# as root with apt-get; otherwise prints the exact command and stops.
terse_need_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "terse needs these Debian packages: ${missing[*]}" >&2
    echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The toolchain and libraries every build uses.
terse_base_packages=(cmake ninja-build g++ doctest-dev libbenchmark-dev libopenmpi-dev openmpi-bin libopenblas-dev)
# SimGrid's SMPI (smpicxx, smpirun) for the smpi preset.
terse_smpi_packages=(libsimgrid-dev)
# The training study (scripts/demo, tests/study): Fashion-MNIST, BLAS, zlib.
terse_study_packages=(dataset-fashion-mnist libopenblas-dev zlib1g-dev)

terse_jobs() { nproc 2>/dev/null || echo 2; }

# Installs what building and testing s3d needs, only where it is missing. Sourced by
# scripts/serve and scripts/test; works on Debian/Ubuntu as root or through sudo.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# libclang_in DIR: prints the first file in DIR that bindgen would load as libclang. bindgen
# (through clang-sys, loading at run time) accepts libclang.so, libclang-*.so, libclang.so.* and
# libclang-*.so.*, but never libclang-cpp (a different library that shares the prefix).
libclang_in() {
    local f
    for f in "$1"/libclang.so "$1"/libclang-*.so "$1"/libclang.so.* "$1"/libclang-*.so.*; do
        case "${f##*/}" in *-cpp.*) continue ;; esac
        [ -e "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# find_libclang [ROOT]: prints the libclang bindgen would load, searching where it searches:
# only LIBCLANG_PATH (a directory, or a file) when set; otherwise llvm-config's prefix,
# LD_LIBRARY_PATH, LIBRARY_PATH and the system directories. ROOT (for tests) prefixes the
# system directories and disables llvm-config.
find_libclang() {
    local root="${1:-}" d pattern
    if [ -n "${LIBCLANG_PATH:-}" ]; then
        if [ -f "$LIBCLANG_PATH" ]; then
            case "${LIBCLANG_PATH##*/}" in
                *-cpp.*) return 1 ;;
                libclang.so | libclang-*.so | libclang.so.* | libclang-*.so.*) echo "$LIBCLANG_PATH"; return 0 ;;
            esac
        fi
        libclang_in "$LIBCLANG_PATH"
        return
    fi
    if [ -z "$root" ] && command -v llvm-config >/dev/null 2>&1; then
        local prefix
        prefix="$(llvm-config --prefix 2>/dev/null | head -n1)"
        if [ -n "$prefix" ]; then
            for d in "$prefix/bin" "$prefix/lib" "$prefix/lib64"; do
                libclang_in "$d" && return 0
            done
        fi
    fi
    local IFS=:
    for d in ${LD_LIBRARY_PATH:-} ${LIBRARY_PATH:-}; do
        [ -n "$d" ] && libclang_in "$d" && return 0
    done
    unset IFS
    for pattern in "/usr/local/llvm*/lib*" "/usr/local/lib*/*/*" "/usr/local/lib*/*" "/usr/local/lib*" \
        "/usr/lib*/*/*" "/usr/lib*/*" "/usr/lib*"; do
        for d in $root$pattern; do
            [ -d "$d" ] && libclang_in "$d" && return 0
        done
    done
    return 1
}

have_libclang() {
    find_libclang >/dev/null
}

# RocksDB's build needs a C++ compiler and libclang (for bindgen).
ensure_build_deps() {
    local missing=()
    command -v cargo >/dev/null || { echo "cargo is required: install Rust from https://rustup.rs" >&2; exit 1; }
    # The lints run too; rustup's default profile has both components, minimal ones may not.
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
    command -v c++ >/dev/null || missing+=(g++)
    have_libclang || missing+=(clang libclang-dev)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing build prerequisites: ${missing[*]}" >&2
        apt_install "${missing[@]}"
        if ! have_libclang; then
            echo "libclang is still missing after installing clang and libclang-dev;" \
                "set LIBCLANG_PATH to the directory holding libclang.so" >&2
            exit 1
        fi
    fi
}

# announce_first_build PROFILE: RocksDB's C++ sources are compiled once per target directory and
# profile; say so before that happens, since nothing else is printed for minutes.
announce_first_build() {
    local dir="${TARGET_DIR}/$1/build"
    if ! compgen -G "${dir}/librocksdb-sys-*/out/*.a" >/dev/null; then
        echo "s3d: the first build compiles RocksDB (C++) and takes several minutes" \
            "(about 10-15 on two cores); later builds take seconds." >&2
    fi
}

# Real clients for the scripted tests: curl, s3cmd and rclone from Debian (and openssl, which
# makes the test certificates); aws-cli, boto3
# and pytest from PyPI in a virtualenv under the target directory.
ensure_client_deps() {
    local missing=()
    command -v curl >/dev/null || missing+=(curl)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v s3cmd >/dev/null || missing+=(s3cmd)
    command -v rclone >/dev/null || missing+=(rclone)
    command -v python3 >/dev/null || missing+=(python3)
    python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing client prerequisites: ${missing[*]}" >&2
        apt_install "${missing[@]}"
    fi
    CLIENT_VENV="${TARGET_DIR}/client-venv"
    make_venv "${CLIENT_VENV}" "import boto3, pytest, awscli" awscli boto3 pytest
    # The compatibility matrix also runs boto3 with awscrt (CRC32C, CRC64NVME) and boto3
    # from before the January 2025 checksum defaults, each in its own virtualenv.
    CLIENT_VENV_CRT="${TARGET_DIR}/client-venv-crt"
    make_venv "${CLIENT_VENV_CRT}" "import boto3, awscrt" boto3 awscrt
    CLIENT_VENV_OLD="${TARGET_DIR}/client-venv-old"
    make_venv "${CLIENT_VENV_OLD}" "import boto3; assert boto3.__version__.startswith('1.35.')" "boto3==1.35.99"
    export CLIENT_VENV CLIENT_VENV_CRT CLIENT_VENV_OLD
}

# Servers the tests start on their own (in temporary directories, on loopback ports):
# PostgreSQL, for the shared metadata store, and haproxy, the balancer of the cluster test.
# Installing them must not leave system services running: the packages' services are not
# started (policy-rc.d), and PostgreSQL's default cluster is not created when PostgreSQL was
# not there yet.
ensure_test_servers() {
    local missing=()
    compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
    command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    [ "${#missing[@]}" -gt 0 ] || return 0
    echo "installing test servers: ${missing[*]}" >&2
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        as_root mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.d/s3d-tests.conf >/dev/null
    fi
    without_services apt_install "${missing[@]}"
}

# without_services COMMAND...: runs COMMAND (a package installation) with Debian's
# policy-rc.d refusing to start services, so that no system daemon is left running.
without_services() {
    local policy=/usr/sbin/policy-rc.d placed=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        placed=1
    fi
    local status=0
    "$@" || status=$?
    if [ "$placed" -eq 1 ]; then as_root rm -f "$policy"; fi
    return "$status"
}

# make_venv DIR CHECK PACKAGES...: (re)creates DIR with PACKAGES unless CHECK already passes there.
make_venv() {
    local dir="$1" check="$2"
    shift 2
    if ! "${dir}/bin/python" -c "${check}" >/dev/null 2>&1; then
        echo "installing $* into ${dir}" >&2
        rm -rf "${dir}"
        python3 -m venv "${dir}"
        "${dir}/bin/pip" install -q --disable-pip-version-check "$@"
    fi
}

#!/usr/bin/env bash
# Tests scripts/prereqs.sh's libclang check against fake system trees: it must accept exactly
# the files bindgen loads and refuse libclang-cpp, which bindgen cannot use.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/prereqs.sh
unset LIBCLANG_PATH LD_LIBRARY_PATH LIBRARY_PATH

failures=0
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

# expect NAME present|missing FILES...: a fresh fake root holding FILES.
expect() {
    local name="$1" want="$2" got f
    shift 2
    rm -rf "${root:?}"/*
    for f in "$@"; do
        mkdir -p "$root/$(dirname "$f")"
        : >"$root/$f"
    done
    if found="$(find_libclang "$root")"; then got=present; else got=missing; fi
    if [ "$got" = "$want" ]; then
        echo "ok   $name: $got${found:+ ($found)}"
    else
        echo "FAIL $name: expected $want, got $got${found:+ ($found)}"
        failures=$((failures + 1))
    fi
}

expect "empty tree" missing
expect "only libclang-cpp (Debian libclang-cpp14)" missing \
    usr/lib/x86_64-linux-gnu/libclang-cpp.so.14 usr/lib/llvm-14/lib/libclang-cpp.so.14
expect "LLVM without libclang" missing usr/lib/llvm-14/lib/libLLVM-14.so.1
expect "libclang.so.1 (Debian libclang1-14)" present usr/lib/llvm-14/lib/libclang.so.1
expect "libclang-14.so.1 in the multiarch directory" present \
    usr/lib/x86_64-linux-gnu/libclang-14.so.1
expect "libclang.so (libclang-dev)" present usr/lib/llvm-14/lib/libclang.so
expect "libclang-cpp beside libclang-14.so" present \
    usr/lib/libclang-cpp.so.14 usr/lib64/libclang-14.so
expect "libclang under /usr/local/llvm" present usr/local/llvm16/lib/libclang.so.16
expect "libclang in a directory bindgen does not search" missing opt/llvm/lib/libclang.so

# LIBCLANG_PATH replaces the search: a directory or a file, libclang-cpp never counts.
expect_env() {
    local name="$1" want="$2" path="$3" got
    shift 3
    rm -rf "${root:?}"/*
    for f in "$@"; do
        mkdir -p "$root/$(dirname "$f")"
        : >"$root/$f"
    done
    if found="$(LIBCLANG_PATH="$root/$path" find_libclang "$root")"; then got=present; else got=missing; fi
    if [ "$got" = "$want" ]; then
        echo "ok   $name: $got"
    else
        echo "FAIL $name: expected $want, got $got"
        failures=$((failures + 1))
    fi
}
expect_env "LIBCLANG_PATH directory with libclang.so" present opt/llvm/lib opt/llvm/lib/libclang.so
expect_env "LIBCLANG_PATH directory with only libclang-cpp" missing opt/llvm/lib \
    opt/llvm/lib/libclang-cpp.so.14 usr/lib/llvm-14/lib/libclang.so.1
expect_env "LIBCLANG_PATH naming the file" present opt/llvm/lib/libclang-15.so.1 \
    opt/llvm/lib/libclang-15.so.1
expect_env "LIBCLANG_PATH naming libclang-cpp" missing opt/llvm/lib/libclang-cpp.so.15 \
    opt/llvm/lib/libclang-cpp.so.15

# LD_LIBRARY_PATH is searched like bindgen does.
rm -rf "${root:?}"/*
mkdir -p "$root/custom"
: >"$root/custom/libclang.so.18"
if LD_LIBRARY_PATH="/nonexistent:$root/custom" find_libclang "$root" >/dev/null; then
    echo "ok   LD_LIBRARY_PATH: present"
else
    echo "FAIL LD_LIBRARY_PATH: expected present"
    failures=$((failures + 1))
fi

if [ "$failures" -gt 0 ]; then
    echo "$failures prerequisite check(s) failed" >&2
    exit 1
fi
echo "prerequisite checks passed"

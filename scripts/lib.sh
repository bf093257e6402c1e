# shellcheck shell=bash
# Shared by scripts/test and scripts/safeshift: finding what a fresh machine lacks and
# installing it with apt (as root), or saying exactly what to install (otherwise).
# Everything here prints to stderr, so a wrapped command's stdout stays clean.

safeshift_say() {
    echo "safeshift: $*" >&2
}

# Cargo itself cannot come from apt in the version safeshift needs.
safeshift_require_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        safeshift_say "cargo is not installed; install Rust (rustup, stable toolchain) and retry"
        exit 1
    fi
}

# Packages needed to *build* safeshift, printed space-separated: libclang for pg_query's
# bindgen (the library, and the builtin headers such as stdbool.h), and OpenSSL for TLS.
safeshift_missing_build_packages() {
    local missing=()
    if [[ -z ${LIBCLANG_PATH:-} ]]; then
        [[ -e /usr/lib/llvm-14/lib/libclang.so.1 ]] || missing+=(libclang1-14)
        compgen -G '/usr/lib/llvm-14/lib/clang/*/include/stdbool.h' >/dev/null \
            || missing+=(libclang-common-14-dev)
    fi
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    [[ -e /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
    echo "${missing[*]}"
}

# Packages needed to *test* safeshift, printed space-separated: a PostgreSQL 15 server,
# PgBouncer and a MariaDB server (the test suite starts its own throwaway instances of each;
# mariadb-server brings mariadb-dump and the mariadb client, which MySQL backups use), and
# percona-toolkit for pt-online-schema-change.
safeshift_missing_test_packages() {
    local missing=()
    if [[ -z ${SAFESHIFT_PG_BIN:-} || ! -x ${SAFESHIFT_PG_BIN:-}/postgres ]]; then
        [[ -x /usr/lib/postgresql/15/bin/postgres ]] || missing+=(postgresql-15)
    fi
    if [[ ! -x /usr/sbin/pgbouncer ]] && ! command -v pgbouncer >/dev/null 2>&1; then
        missing+=(pgbouncer)
    fi
    if [[ -z ${SAFESHIFT_MARIADB_BIN:-} || ! -x ${SAFESHIFT_MARIADB_BIN:-}/mariadbd ]]; then
        [[ -x /usr/sbin/mariadbd ]] || missing+=(mariadb-server)
    fi
    command -v pt-online-schema-change >/dev/null 2>&1 || missing+=(percona-toolkit)
    echo "${missing[*]}"
}

# Installs the given Debian packages (none: does nothing). As root it runs apt-get, updating
# the package lists only if the first attempt fails; otherwise it prints the command and exits 1.
safeshift_install_packages() {
    (($# > 0)) || return 0
    local install=(apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 "$@")
    if [[ $(id -u) -ne 0 ]]; then
        safeshift_say "missing system packages: $*"
        safeshift_say "install them as root with:"
        echo "  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        safeshift_say "missing system packages (Debian names): $*; this system has no apt-get, so install the equivalents by hand"
        exit 1
    fi
    safeshift_say "installing missing system packages: $*"
    if ! DEBIAN_FRONTEND=noninteractive "${install[@]}" </dev/null >&2; then
        safeshift_say "install failed; updating the package lists and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get update </dev/null >&2
        DEBIAN_FRONTEND=noninteractive "${install[@]}" </dev/null >&2
    fi
}

# Cargo's target directory for this workspace (honours CARGO_TARGET_DIR and .cargo/config).
safeshift_target_dir() {
    cargo metadata --format-version 1 --no-deps \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

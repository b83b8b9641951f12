#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the distributed tests and benchmarks: initdb into a new
# temporary folder, pg_ctl start on a free loopback port, one database; nothing else on the
# machine is touched. Debian's `postgresql` package provides the binaries.
#   eval "$(bash scripts/pg-throwaway.sh start)"   # exports AUTOML_TL_TEST_POSTGRES, AUTOML_TL_PG_DIR
#   bash scripts/pg-throwaway.sh stop "$AUTOML_TL_PG_DIR"
set -euo pipefail
bindir=$(command -v initdb >/dev/null 2>&1 && dirname "$(readlink -f "$(command -v initdb)")" \
         || ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || { echo "pg-throwaway: no initdb (install Debian's postgresql)" >&2; exit 1; }
as_owner() {  # initdb and postgres refuse to run as root: run them as the postgres user then
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    dir=$(mktemp -d /tmp/automl-tl-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir" && chmod 700 "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-k $dir -h 127.0.0.1 -p $port -F" start >/dev/null; then
      echo "pg-throwaway: the server did not start; its log ($dir/log) ends:" >&2
      tail -n 20 "$dir/log" >&2 || true
      exit 1
    fi
    as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres automl_tl >/dev/null
    echo "export AUTOML_TL_PG_DIR=$dir"
    echo "export AUTOML_TL_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$port/automl_tl"
    ;;
  stop)
    dir=${2:?the folder printed by start}
    case "$dir" in /tmp/automl-tl-pg.*) ;; *) echo "pg-throwaway: not a throwaway cluster: $dir" >&2; exit 1;; esac
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2;;
esac

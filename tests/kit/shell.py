"""Pieces of shell scripts the benchmarks and the lab write (keepalived
notify scripts the classic way). Plain text: put them into a script after
formatting it (they contain braces and percent signs)."""

# running PID: a process that exists and is not a zombie; pgbouncer_pid:
# pid (the caller's local) := the running pgbouncer's PID from $PIDFILE
SH_RUNNING = """\
# running PID: a process that exists and is not a zombie
running() {
    local line st
    { read -r line < "/proc/$1/stat"; } 2>/dev/null || return 1
    st=${line##*) }
    [ "${st%% *}" != Z ]
}

# pid := the PID in $PIDFILE if it runs (pid is the caller's local); else fail
pgbouncer_pid() {
    [ -r "$PIDFILE" ] || return 1
    read -r pid < "$PIDFILE" || return 1
    running "$pid"
}
"""
# the placeholder a script template holds where SH_RUNNING goes
SH_RUNNING_AT = "@SH_RUNNING@\n"


def with_running(script):
    """The formatted script with SH_RUNNING in place of its placeholder."""
    assert SH_RUNNING_AT in script
    return script.replace(SH_RUNNING_AT, SH_RUNNING)

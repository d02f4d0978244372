#!/bin/sh
# Runs on a Raspberry Pi node (uploaded with the firmware sources by the controller's rpi-ssh flasher,
# controller/flash/rpi-ssh.ts): builds the POSIX node from source on the Pi, installs it under DIR and runs it as
# a service on the Pi's serial line (its UART console or USB gadget serial /dev/ttyGS0) for the controller.
#
#   qslab-pi-service.sh build     --dir DIR                  -> make; prints "HASH <build hash>"
#   qslab-pi-service.sh install   --dir DIR --device DEV --board B --name N --baud R --service systemd|supervise
#                                 (installs DIR/bin/qslab-node atomically, then (re)starts the service)
#   qslab-pi-service.sh stop      --dir DIR --service S
#   qslab-pi-service.sh status    --dir DIR --service S      -> "RUNNING <pid>" or "STOPPED"
#   qslab-pi-service.sh unit      --dir DIR --device DEV --board B --name N --baud R   -> the systemd unit text
#   qslab-pi-service.sh uninstall --dir DIR --service S      (stop, remove the unit and DIR)
#
# service systemd: /etc/systemd/system/qslab-node.service (root or passwordless sudo); survives reboots, restarts
# the node when it dies. service supervise: no init system involved, a pid file in DIR/run (for images without
# systemd, and what the controller's tests use). Exit 0 ok, 2 bad arguments, 3 missing tool, 1 anything else.
set -eu

die() { echo "qslab-pi-service: $1" >&2; exit "${2:-1}"; }

ACTION=${1:-}
[ -n "$ACTION" ] || die "usage: qslab-pi-service.sh build|install|stop|status|unit|uninstall --dir DIR ..." 2
shift
DIR= DEVICE= BOARD= NAME= BAUD=115200 SERVICE=systemd
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "option $1 needs a value" 2
  case "$1" in
    --dir) DIR=$2 ;;
    --device) DEVICE=$2 ;;
    --board) BOARD=$2 ;;
    --name) NAME=$2 ;;
    --baud) BAUD=$2 ;;
    --service) SERVICE=$2 ;;
    *) die "unknown option $1" 2 ;;
  esac
  shift 2
done

# The controller validates these too; checked again here because this script may be run by hand.
case "$DIR" in /*) ;; *) die "--dir must be an absolute path" 2 ;; esac
case "$DIR" in *..*|*[!A-Za-z0-9_./-]*) die "--dir may only hold A-Z a-z 0-9 _ . / - (no ..)" 2 ;; esac
case "$SERVICE" in systemd|supervise) ;; *) die "--service is systemd or supervise" 2 ;; esac
case "$BAUD" in ''|*[!0-9]*) die "--baud must be a number" 2 ;; esac
need_node_args() {
  case "$DEVICE" in /dev/*) ;; *) die "--device must be a /dev path (e.g. /dev/ttyGS0 or /dev/serial0)" 2 ;; esac
  case "$DEVICE" in *..*|*[!A-Za-z0-9_./:+-]*) die "--device holds characters a device path does not" 2 ;; esac
  case "$BOARD" in rpi3|rpi4) ;; *) die "--board must be rpi3 or rpi4 (got '$BOARD')" 2 ;; esac
  case "$NAME" in ''|*[!A-Za-z0-9_.-]*) die "--name is 1-40 of A-Z a-z 0-9 _ . -" 2 ;; esac
}

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
PIDFILE=$DIR/run/qslab-node.pid
UNIT=/etc/systemd/system/qslab-node.service

unit_text() {
  cat <<EOF
# Written by qslab-pi-service.sh (qslab rpi-ssh flasher); qslab flash rewrites it.
[Unit]
Description=qslab node $NAME (protocol v1 on $DEVICE)
After=network-online.target dev-$(basename "$DEVICE").device
Wants=network-online.target

[Service]
ExecStart=$DIR/bin/qslab-node --board $BOARD --serial $DEVICE --baud $BAUD --name $NAME
Restart=always
RestartSec=1
KillSignal=SIGTERM

[Install]
WantedBy=multi-user.target
EOF
}

pid_alive() {
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  # Only a process that is our binary counts (a stale pid may belong to something else by now).
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline")
  case "$cmd" in "$DIR/bin/qslab-node "*) return 0 ;; *) return 1 ;; esac
}

stop_node() {
  if [ "$SERVICE" = systemd ]; then
    command -v systemctl >/dev/null || die "systemctl not found: use service: supervise in the rig file" 3
    $SUDO systemctl stop qslab-node.service 2>/dev/null || true
    return 0
  fi
  if pid_alive; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while pid_alive && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    if pid_alive; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$PIDFILE"
}

case "$ACTION" in
  build)
    command -v make >/dev/null || die "make not found on the Pi: sudo apt-get install build-essential libssl-dev" 3
    command -v cc >/dev/null || die "cc not found on the Pi: sudo apt-get install build-essential libssl-dev" 3
    [ -f "$DIR/src/Makefile" ] || die "$DIR/src/Makefile missing: the upload did not complete"
    jobs=$(nproc 2>/dev/null || echo 1)
    make -C "$DIR/src" -s -j"$jobs" build/qslab-node >&2 || die "build failed on the Pi (is libssl-dev installed? sudo apt-get install libssl-dev)"
    echo "HASH $(cat "$DIR/src/build/build-hash.txt")"
    ;;
  unit)
    need_node_args
    unit_text
    ;;
  install)
    need_node_args
    [ -x "$DIR/src/build/qslab-node" ] || die "$DIR/src/build/qslab-node missing: run build first"
    mkdir -p "$DIR/bin" "$DIR/run" "$DIR/log"
    : > "$DIR/.qslab-deploy"
    stop_node
    cp "$DIR/src/build/qslab-node" "$DIR/bin/qslab-node.new"
    chmod 0755 "$DIR/bin/qslab-node.new"
    mv -f "$DIR/bin/qslab-node.new" "$DIR/bin/qslab-node"
    if [ "$SERVICE" = systemd ]; then
      unit_text > "$DIR/run/qslab-node.service"
      $SUDO install -m 0644 "$DIR/run/qslab-node.service" "$UNIT" || die "cannot write $UNIT: run as root or give $(id -un) passwordless sudo, or use service: supervise"
      $SUDO systemctl daemon-reload
      $SUDO systemctl enable qslab-node.service >/dev/null 2>&1 || true
      $SUDO systemctl restart qslab-node.service || die "systemctl restart qslab-node failed: journalctl -u qslab-node"
      echo "RUNNING $(systemctl show -p MainPID --value qslab-node.service)"
    else
      # setsid: the node outlives this ssh session; it is not a process group leader here, so setsid execs in
      # place and $! is the node's pid.
      setsid "$DIR/bin/qslab-node" --board "$BOARD" --serial "$DEVICE" --baud "$BAUD" --name "$NAME" \
        < /dev/null >> "$DIR/log/node.log" 2>&1 &
      echo $! > "$PIDFILE"
      sleep 0.2
      pid_alive || die "the node exited at once: tail $DIR/log/node.log"
      echo "RUNNING $pid"
    fi
    ;;
  stop)
    stop_node
    ;;
  status)
    if [ "$SERVICE" = systemd ]; then
      if systemctl is-active --quiet qslab-node.service; then echo "RUNNING $(systemctl show -p MainPID --value qslab-node.service)"; else echo STOPPED; fi
    elif pid_alive; then echo "RUNNING $pid"; else echo STOPPED; fi
    ;;
  uninstall)
    stop_node
    if [ "$SERVICE" = systemd ] && [ -f "$UNIT" ]; then
      $SUDO systemctl disable qslab-node.service >/dev/null 2>&1 || true
      $SUDO rm -f "$UNIT"
      $SUDO systemctl daemon-reload
    fi
    # Only a directory this script installed into is removed.
    if [ -f "$DIR/.qslab-deploy" ]; then rm -rf "$DIR"; fi
    ;;
  *)
    die "unknown action '$ACTION' (build|install|stop|status|unit|uninstall)" 2
    ;;
esac

#!/usr/bin/env bash
# Starts every local service the integration tests use when it is down, then waits until each answers.
# Idempotent: a running service is left alone. Used by .ci/run; safe to run by hand.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2 tries=0
  until port_open "$port"; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ]; then echo "services: $name did not open port $port" >&2; return 1; fi
    sleep 0.5
  done
}

start_if_down() {
  local name=$1 port=$2; shift 2
  if port_open "$port"; then echo "services: $name is up ($port)"; return 0; fi
  echo "services: starting $name"
  "$@" >/dev/null 2>&1 || echo "services: start command for $name returned $?" >&2
  wait_port "$name" "$port" && echo "services: $name is up ($port)"
}

status=0
if command -v pg_ctlcluster >/dev/null 2>&1; then
  start_if_down postgres 5432 pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || status=1
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
  if [ "$(id -u)" = 0 ]; then
    start_if_down mariadb 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql || status=1
  else
    start_if_down mariadb 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || status=1
  fi
fi
if command -v redis-server >/dev/null 2>&1; then
  start_if_down redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || status=1
fi
if command -v rabbitmq-server >/dev/null 2>&1; then
  start_if_down rabbitmq 5672 rabbitmq-server -detached || status=1
fi
if command -v mosquitto >/dev/null 2>&1; then
  start_if_down mosquitto 1883 mosquitto -d -c /etc/mosquitto/mosquitto.conf || status=1
fi
if [ -x /usr/sbin/nats-server ]; then
  start_if_down nats 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || status=1
fi
exit $status

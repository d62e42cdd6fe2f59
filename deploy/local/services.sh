#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one combined broker+controller node, official jars from Maven) and
# Debian's redis-server, for dev, tests, demo, benchmarks and CI. See usage() below.
#
# Everything lives under TASTE_SERVICES_DIR (default <repo>/.taste/services, git-ignored):
#   kafka/lib/          jars resolved by Maven from deploy/local/kafka/pom.xml (+ .resolved marker)
#   kafka/data/         KRaft metadata + topic logs (formatted once, reused across restarts)
#   kafka/server.properties, kafka/log4j.properties   generated on every start
#   kafka/kafka.pid, kafka/kafka.log (previous run: kafka.log.1)
#   redis/redis.conf, redis/redis.pid, redis/redis.log, redis/data/
#   redis-cluster/<port>/   one node of the optional local Redis Cluster ('cluster start'):
#                           redis.conf, nodes.conf (cluster membership, kept across restarts),
#                           redis.pid, redis.log
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/../.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT
readonly POM="$SCRIPT_DIR/kafka/pom.xml"

readonly HOST=127.0.0.1
readonly KAFKA_PORT="${TASTE_KAFKA_PORT:-39092}"
readonly CONTROLLER_PORT="${TASTE_KAFKA_CONTROLLER_PORT:-39093}"
readonly REDIS_PORT="${TASTE_REDIS_PORT:-36379}"
readonly SERVICES_DIR="${TASTE_SERVICES_DIR:-$REPO_ROOT/.taste/services}"
# Seconds to wait for each service to answer after starting it.
readonly READY_TIMEOUT="${TASTE_SERVICES_TIMEOUT:-90}"
# JVM options for the broker (heap kept small: tests and demo, not production).
readonly KAFKA_JVM_OPTS="${TASTE_KAFKA_JVM_OPTS:--Xms256m -Xmx512m}"
# Optional second listener, SASL_SSL (TLS + SCRAM), beside the plaintext one the script itself uses.
readonly KAFKA_SECURE_PORT="${TASTE_KAFKA_SECURE_PORT:-}"
readonly KAFKA_SCRAM_USER="${TASTE_KAFKA_SCRAM_USER:-taste}"
readonly KAFKA_SCRAM_PASSWORD="${TASTE_KAFKA_SCRAM_PASSWORD:-taste-local-secret}"

readonly KAFKA_DIR="$SERVICES_DIR/kafka"
readonly KAFKA_LIB="$KAFKA_DIR/lib"
readonly KAFKA_DATA="$KAFKA_DIR/data"
readonly KAFKA_PROPS="$KAFKA_DIR/server.properties"
readonly KAFKA_PID="$KAFKA_DIR/kafka.pid"
readonly KAFKA_LOG="$KAFKA_DIR/kafka.log"
readonly KAFKA_TLS_DIR="$KAFKA_DIR/tls"
readonly KAFKA_TLS_CA="$KAFKA_TLS_DIR/broker-ca.pem"
readonly REDIS_DIR="$SERVICES_DIR/redis"
readonly REDIS_CONF="$REDIS_DIR/redis.conf"
readonly REDIS_PID="$REDIS_DIR/redis.pid"
readonly REDIS_LOG="$REDIS_DIR/redis.log"

readonly KAFKA_BROKERS="$HOST:$KAFKA_PORT"
readonly REDIS_URL="redis://$HOST:$REDIS_PORT"

usage() {
  cat <<EOF
Usage: bash deploy/local/services.sh COMMAND

Commands:
  start     install what is missing, start Kafka and Redis (or reuse the ones already answering
            on the configured ports), wait until both answer, print where things are
  status    exit 0 if both answer, non-zero otherwise
  stop      stop what this script started (pid files): SIGTERM, wait, then SIGKILL
  restart   stop, then start
  env       print export lines for TASTE_KAFKA_BROKERS and TASTE_REDIS_URL
            (use: eval "\$(bash deploy/local/services.sh env)")
  topics create NAME PARTITIONS [--config K=V ...]   create a topic if it does not exist
  topics delete NAME                                 delete a topic
  topics list                                        list topics
  cluster start|stop|status|env
            a separate local Redis Cluster (3 masters, no replicas) for the cluster variant of
            the feature-store tests; 'env' prints TASTE_TEST_REDIS_CLUSTER_URL

Environment (defaults):
  TASTE_KAFKA_PORT=39092  TASTE_KAFKA_CONTROLLER_PORT=39093  TASTE_REDIS_PORT=36379
  TASTE_SERVICES_DIR=<repo>/.taste/services   TASTE_SERVICES_TIMEOUT=90 (seconds)
  TASTE_KAFKA_JVM_OPTS='-Xms256m -Xmx512m'
  TASTE_REDIS_CLUSTER_PORTS='37001 37002 37003' (cluster bus: each port + 10000)
  TASTE_KAFKA_SECURE_PORT=<unset>: when set, the broker also listens there with SASL_SSL: TLS
    with a certificate made by keytool (its PEM: <services>/kafka/tls/broker-ca.pem) and SCRAM
    (SHA-256 and SHA-512) user TASTE_KAFKA_SCRAM_USER=taste, TASTE_KAFKA_SCRAM_PASSWORD=
    taste-local-secret, created with kafka-configs; 'env' then prints TASTE_KAFKA_SECURE_* too
A second, independent pair needs other ports and another TASTE_SERVICES_DIR.
EOF
}

log() { printf '[services] %s\n' "$*" >&2; }
die() {
  printf '[services] error: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Probes

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# kafka_call PORT REQUEST N: sends one Kafka request (a printf format of its bytes, size prefix
# included, correlation id 0x7a57) to 127.0.0.1:PORT and sets KAFKA_REPLY to the first N bytes of
# the response as decimal numbers. Fails on no connection, a short reply or a wrong correlation
# id. Pure bash: probes cost no JVM start.
KAFKA_REPLY=()
kafka_call() {
  local out
  # shellcheck disable=SC2016 # expanded by the inner shell
  out="$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "$2" >&3
    head -c "$3" <&3 | od -An -v -tu1
  ' "$HOST" "$1" "$2" "$3" 2>/dev/null)" || return 1
  read -r -a KAFKA_REPLY <<<"$(tr -s ' \n' ' ' <<<"$out")"
  ((${#KAFKA_REPLY[@]} == $3)) || return 1
  # response header: size (int32) | correlation_id (int32)
  ((KAFKA_REPLY[4] == 0 && KAFKA_REPLY[5] == 0 && KAFKA_REPLY[6] == 0x7a && KAFKA_REPLY[7] == 0x57))
}

# True when a Kafka broker on port $1 answers a Metadata request and lists at least one broker.
# A KRaft broker lists itself only once it has caught up with the metadata log and is unfenced,
# i.e. when topics can be created and produced to.
kafka_answers() {
  # Metadata v4 (kept by Kafka 4.x): size=23 | api_key=3 | api_version=4 | correlation_id |
  # client_id="services" | topics=[] (none) | allow_auto_topic_creation=false
  kafka_call "$1" '\x00\x00\x00\x17\x00\x03\x00\x04\x00\x00\x7a\x57\x00\x08services\x00\x00\x00\x00\x00' 16 || return 1
  # response: ... | throttle_time_ms (int32) | brokers array length (int32)
  local -a b=("${KAFKA_REPLY[@]}")
  ((b[12] * 16777216 + b[13] * 65536 + b[14] * 256 + b[15] >= 1))
}

# Asks for a group and a transaction coordinator until both exist, so that the internal topics
# (__consumer_offsets, __transaction_state) are created and loaded now rather than inside the
# first test's timeout. Best effort.
kafka_warm_up() {
  local key_type deadline=$((SECONDS + 30))
  for key_type in 00 01; do
    # FindCoordinator v2: size=33 | api_key=10 | api_version=2 | correlation_id |
    # client_id="services" | key="taste-warmup" | key_type (0 group, 1 transaction)
    until kafka_call "$KAFKA_PORT" "\x00\x00\x00\x21\x00\x0a\x00\x02\x00\x00\x7a\x57\x00\x08services\x00\x0ctaste-warmup\x$key_type" 14 &&
      ((KAFKA_REPLY[12] == 0 && KAFKA_REPLY[13] == 0)); do # error_code after throttle_time_ms
      if ((SECONDS >= deadline)); then
        log "warning: Kafka's internal topics are not ready yet (first consumer group may wait)"
        return 0
      fi
      sleep 0.2
    done
  done
}

redis_answers() {
  command -v redis-cli >/dev/null 2>&1 || return 1
  [[ "$(timeout 3 redis-cli -h "$HOST" -p "$1" ping 2>/dev/null)" == PONG ]]
}

# Prints the pid recorded in pid file $1 if that process is alive and its command line contains
# $2 (guards against a stale pid file whose pid was reused by an unrelated process).
live_pid() {
  local pid
  [[ -s "$1" ]] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  printf '%s\n' "$pid"
}

kafka_pid() { live_pid "$KAFKA_PID" "$KAFKA_PROPS"; }
redis_pid() { live_pid "$REDIS_PID" "redis-server"; }

# Port a running instance was configured with: key $2 of properties file $1 (ours, generated).
configured_port() {
  sed -n "s/^$2=.*:\([0-9][0-9]*\)\$/\1/p" "$1" 2>/dev/null | head -n 1
}

print_log_tail() {
  [[ -f "$1" ]] || return 0
  log "last lines of $1:"
  tail -n 25 "$1" | sed 's/^/    /' >&2
}

# ---------------------------------------------------------------------------------------------
# Installation

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

apt_updated=false
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  # Keep apt from starting the distribution's own service (redis on 6379): we run our own.
  local policy=/usr/sbin/policy-rc.d made_policy=false
  if [[ ! -e "$policy" ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" || return 1
    made_policy=true
  fi
  local rc=0 apt_log="$SERVICES_DIR/apt.log"
  mkdir -p "$SERVICES_DIR"
  if ! $apt_updated; then
    as_root apt-get update -qq >"$apt_log" 2>&1 || rc=$?
    apt_updated=true
  fi
  ((rc == 0)) && { as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >>"$apt_log" 2>&1 || rc=$?; }
  if $made_policy; then as_root rm -f "$policy" || true; fi
  ((rc == 0)) || print_log_tail "$apt_log"
  return "$rc"
}

ensure_redis_installed() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  log "redis-server not found: installing it with apt-get (Debian package redis-server)"
  apt_install redis-server redis-tools ||
    die "could not install redis-server; install it yourself (sudo apt-get install -y redis-server) and rerun"
  command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after apt-get install"
}

# The tests make throwaway TLS certificates with it (Redis over TLS); Debian images usually have it.
ensure_openssl_installed() {
  command -v openssl >/dev/null 2>&1 && return 0
  log "openssl not found: installing it with apt-get (the TLS tests make their certificates with it)"
  apt_install openssl || log "warning: could not install openssl; the Redis TLS test will fail"
}

ensure_kcat_installed() {
  command -v kcat >/dev/null 2>&1 && return 0
  # Tried and failed before: don't pay for apt-get on every start.
  local failed="$SERVICES_DIR/.kcat-install-failed"
  [[ -f "$failed" ]] && return 0
  log "kcat not found: installing it with apt-get (optional, used for manual checks)"
  if ! apt_install kcat; then
    log "warning: could not install kcat (optional); continuing without it (delete $failed to retry)"
    : >"$failed"
  fi
}

ensure_java() {
  command -v java >/dev/null 2>&1 ||
    die "java not found on PATH: Kafka needs Java 17+ (Debian: apt-get install -y openjdk-17-jre-headless)"
  local major
  major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9.]*\)$/\1/p')"
  major="${major#1.}"
  major="${major%%.*}"
  [[ -z "$major" ]] || ((major >= 17)) ||
    die "java on PATH ($(command -v java)) is Java $major: Kafka here needs Java 17+"
}

ensure_mvn() {
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found on PATH: it resolves the Kafka jars (Debian: apt-get install -y maven)"
}

pom_version() {
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n 1
}

# What $KAFKA_LIB/.resolved holds once the jars for the current pom are in place.
jars_marker() {
  local version
  version="$(pom_version)"
  [[ -n "$version" ]] || die "no <kafka.version> in $POM"
  printf 'kafka %s pom-sha256 %s\n' "$version" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

kafka_jars_current() {
  [[ -f "$KAFKA_LIB/.resolved" && "$(cat "$KAFKA_LIB/.resolved")" == "$(jars_marker)" ]]
}

# Resolves the pinned jars into $KAFKA_LIB unless its marker matches the pom (no mvn call then).
ensure_kafka_jars() {
  kafka_jars_current && return 0
  ensure_mvn
  local version want
  version="$(pom_version)"
  want="$(jars_marker)"
  log "resolving Kafka $version jars with Maven (cached in ~/.m2) into $KAFKA_LIB"
  local tmp="$KAFKA_DIR/lib.tmp" mvn_log="$KAFKA_DIR/mvn.log"
  mkdir -p "$KAFKA_DIR"
  rm -rf "$tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1 9>&-; then
    print_log_tail "$mvn_log"
    die "Maven could not resolve the Kafka jars (full output: $mvn_log)"
  fi
  [[ -f "$tmp/kafka_2.13-$version.jar" ]] || die "Maven ran but $tmp has no kafka_2.13-$version.jar"
  rm -rf "$KAFKA_LIB"
  mv "$tmp" "$KAFKA_LIB"
  printf '%s\n' "$want" >"$KAFKA_LIB/.resolved"
}

# ---------------------------------------------------------------------------------------------
# Kafka

# Runs a Kafka command-line tool class quietly (its log4j output off).
kafka_tool() {
  local quiet="$KAFKA_DIR/tools-log4j.properties" quiet2="$KAFKA_DIR/tools-log4j2.properties"
  [[ -f "$quiet" ]] || printf 'log4j.rootLogger=OFF\n' >"$quiet"
  [[ -f "$quiet2" ]] || printf 'status = off\nrootLogger.level = off\n' >"$quiet2"
  java -Djava.awt.headless=true -Xmx256m -Dlog4j.configuration="file:$quiet" \
    -Dlog4j2.configurationFile="$quiet2" -cp "$KAFKA_LIB/*" "$@"
}

# A self-signed broker certificate for 127.0.0.1 in a PKCS12 keystore, once; clients trust its PEM.
ensure_kafka_tls() {
  [[ -s "$KAFKA_TLS_DIR/broker.p12" && -s "$KAFKA_TLS_CA" ]] && return 0
  command -v keytool >/dev/null 2>&1 || die "keytool (from the JDK) is needed for TASTE_KAFKA_SECURE_PORT"
  mkdir -p "$KAFKA_TLS_DIR"
  rm -f "$KAFKA_TLS_DIR/broker.p12"
  log "making a TLS certificate for the secured Kafka listener (keytool)"
  keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 -storetype PKCS12 \
    -keystore "$KAFKA_TLS_DIR/broker.p12" -storepass taste-keystore -keypass taste-keystore \
    -dname "CN=$HOST" -ext "SAN=IP:$HOST,DNS:localhost" -noprompt >/dev/null 2>&1 ||
    die "keytool could not make the broker certificate"
  keytool -exportcert -rfc -alias broker -keystore "$KAFKA_TLS_DIR/broker.p12" -storepass taste-keystore \
    -file "$KAFKA_TLS_CA" >/dev/null 2>&1 || die "keytool could not export the broker certificate"
}

# Creates (or resets) the SCRAM user through the plaintext listener with kafka-configs, as an operator would.
ensure_kafka_scram_user() {
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BROKERS" --alter --entity-type users \
      --entity-name "$KAFKA_SCRAM_USER" --add-config "$mechanism=[iterations=4096,password=$KAFKA_SCRAM_PASSWORD]" >/dev/null 2>&1 ||
      die "kafka-configs could not create the $mechanism user $KAFKA_SCRAM_USER"
  done
}

write_kafka_config() {
  local listeners="PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT"
  local advertised="PLAINTEXT://$HOST:$KAFKA_PORT"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n "$KAFKA_SECURE_PORT" ]]; then
    listeners="$listeners,SASL_SSL://$HOST:$KAFKA_SECURE_PORT"
    advertised="$advertised,SASL_SSL://$HOST:$KAFKA_SECURE_PORT"
    protocols="$protocols,SASL_SSL:SASL_SSL"
  fi
  cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/services.sh on every start: edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA

# Tests create their own topics (kafkajs admin) and must never get one by accident.
auto.create.topics.enable=false
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Fewer internal partitions than the default 50: the first consumer group / transaction on a
# fresh data dir is ready sooner. One node, so nothing is lost by it.
offsets.topic.num.partitions=8
transaction.state.log.num.partitions=8
# Consumer groups form at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
EOF
  if [[ -n "$KAFKA_SECURE_PORT" ]]; then
    cat >>"$KAFKA_PROPS" <<EOF

# The secured listener (TASTE_KAFKA_SECURE_PORT): TLS with the keytool certificate, SCRAM users.
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$KAFKA_TLS_DIR/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=taste-keystore
listener.name.sasl_ssl.ssl.key.password=taste-keystore
EOF
  fi

  # Kafka 3.x logs through reload4j (log4j 1 API), 4.x through log4j2: write the matching config.
  # Warnings and errors only, plus the server's own started/stopped lines.
  cat >"$KAFKA_DIR/log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
EOF
  cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
EOF
}

# Formats the KRaft storage once; later starts reuse it (meta.properties marks it formatted).
format_kafka_storage() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local cluster_id_file="$KAFKA_DIR/cluster.id" cluster_id
  if [[ ! -s "$cluster_id_file" ]]; then
    # A Kafka cluster id is a base64url-encoded random 128-bit UUID (22 chars, no padding). Like
    # Kafka's own Uuid.randomUuid, draw again when it starts with '-' (1 in 64): such an id reads
    # as an option on a command line.
    cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    printf '%s' "$cluster_id" >"$cluster_id_file"
  fi
  cluster_id="$(cat "$cluster_id_file")"
  log "formatting KRaft storage in $KAFKA_DATA (cluster id $cluster_id)"
  mkdir -p "$KAFKA_DATA"
  local out
  # '--cluster-id=ID' in one argument: an id kept from before may still start with '-'.
  if ! out="$(kafka_tool kafka.tools.StorageTool format --ignore-formatted \
    "--cluster-id=$cluster_id" -c "$KAFKA_PROPS" 2>&1 9>&-)"; then
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    die "formatting the KRaft storage failed (kafka.tools.StorageTool)"
  fi
}

launch_kafka() {
  local log_opt=(-Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties")
  if compgen -G "$KAFKA_LIB/log4j-core-2*.jar" >/dev/null; then
    log_opt=(-Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties")
  fi
  [[ -f "$KAFKA_LOG" ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  rm -f "$KAFKA_PID"
  # Own session (setsid) so the broker outlives the caller's terminal or process group; the
  # inner shell writes its own pid and then becomes java (exec), so the pid file names the JVM.
  # shellcheck disable=SC2016,SC2086 # $$ is the inner shell's; KAFKA_JVM_OPTS is a list
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID" \
    java -Djava.awt.headless=true $KAFKA_JVM_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    "${log_opt[@]}" -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_PROPS" \
    </dev/null >"$KAFKA_LOG" 2>&1 9>&- &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$KAFKA_PID" ]] && return 0
    sleep 0.1
  done
  die "Kafka did not start (no pid file $KAFKA_PID); see $KAFKA_LOG"
}

# Waits until the broker answers; fails early when process $1 (if given) dies.
wait_kafka_ready() {
  local pid="${1:-}" deadline=$((SECONDS + READY_TIMEOUT))
  until kafka_answers "$KAFKA_PORT"; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      print_log_tail "$KAFKA_LOG"
      die "Kafka exited during start-up; see $KAFKA_LOG"
    fi
    if ((SECONDS >= deadline)); then
      print_log_tail "$KAFKA_LOG"
      die "Kafka did not answer on $KAFKA_BROKERS within ${READY_TIMEOUT}s (TASTE_SERVICES_TIMEOUT); see $KAFKA_LOG"
    fi
    sleep 0.5
  done
}

# Sets KAFKA_STATE: ours (started from this data dir, pid alive), foreign (another broker answers
# on the port) or absent. Dies on a port held by something else, before anything is started.
KAFKA_STATE=absent
classify_kafka() {
  local running_port
  if kafka_pid >/dev/null; then
    running_port="$(configured_port "$KAFKA_PROPS" advertised.listeners)"
    [[ "$running_port" == "$KAFKA_PORT" ]] ||
      die "the Kafka started from $SERVICES_DIR runs on port ${running_port:-?}, not $KAFKA_PORT: stop it first, or use another TASTE_SERVICES_DIR"
    KAFKA_STATE=ours
  elif port_open "$KAFKA_PORT"; then
    kafka_answers "$KAFKA_PORT" ||
      die "port $KAFKA_PORT is taken by something that is not a Kafka broker (see: ss -ltnp 'sport = :$KAFKA_PORT'); free it or set TASTE_KAFKA_PORT"
    KAFKA_STATE=foreign
  else
    port_open "$CONTROLLER_PORT" &&
      die "controller port $CONTROLLER_PORT is taken (see: ss -ltnp 'sport = :$CONTROLLER_PORT'); free it or set TASTE_KAFKA_CONTROLLER_PORT"
    KAFKA_STATE=absent
  fi
}

start_kafka() {
  local pid
  case "$KAFKA_STATE" in
  ours)
    pid="$(kafka_pid)" || die "Kafka (pid file $KAFKA_PID) exited meanwhile; see $KAFKA_LOG"
    log "Kafka already running (pid $pid), checking it answers"
    wait_kafka_ready "$pid"
    log "Kafka: reusing the running broker (pid $pid)"
    return 0
    ;;
  foreign)
    log "Kafka: a broker not started from $SERVICES_DIR already answers on $KAFKA_BROKERS: reusing it ('stop' leaves it alone)"
    return 0
    ;;
  esac
  ensure_java
  ensure_kafka_jars
  mkdir -p "$KAFKA_DATA"
  [[ -z "$KAFKA_SECURE_PORT" ]] || ensure_kafka_tls
  write_kafka_config
  format_kafka_storage
  log "starting Kafka $(pom_version) on $KAFKA_BROKERS (controller $HOST:$CONTROLLER_PORT)${KAFKA_SECURE_PORT:+, SASL_SSL on $HOST:$KAFKA_SECURE_PORT}"
  launch_kafka
  pid="$(tr -dc '0-9' <"$KAFKA_PID")"
  wait_kafka_ready "$pid"
  kafka_warm_up
  [[ -z "$KAFKA_SECURE_PORT" ]] || ensure_kafka_scram_user
  log "Kafka ready (pid $pid)"
}

# ---------------------------------------------------------------------------------------------
# Redis

write_redis_config() {
  mkdir -p "$REDIS_DIR/data"
  cat >"$REDIS_CONF" <<EOF
# Generated by deploy/local/services.sh on every start: edit the script, not this file.
bind $HOST
port $REDIS_PORT
daemonize yes
pidfile $REDIS_PID
logfile $REDIS_LOG
dir $REDIS_DIR/data
# Dev/test store: nothing is persisted across restarts.
save ""
appendonly no
EOF
}

# Sets REDIS_STATE like KAFKA_STATE (ours | foreign | absent); dies on a port conflict.
REDIS_STATE=absent
classify_redis() {
  local running_port
  if redis_pid >/dev/null; then
    running_port="$(sed -n 's/^port \([0-9]*\)$/\1/p' "$REDIS_CONF" 2>/dev/null)"
    [[ "$running_port" == "$REDIS_PORT" ]] ||
      die "the Redis started from $SERVICES_DIR runs on port ${running_port:-?}, not $REDIS_PORT: stop it first, or use another TASTE_SERVICES_DIR"
    REDIS_STATE=ours
  elif port_open "$REDIS_PORT"; then
    # redis-cli may be missing even though a Redis answers: install it to ask.
    ensure_redis_installed
    redis_answers "$REDIS_PORT" ||
      die "port $REDIS_PORT is taken by something that is not Redis (see: ss -ltnp 'sport = :$REDIS_PORT'); free it or set TASTE_REDIS_PORT"
    REDIS_STATE=foreign
  else
    REDIS_STATE=absent
  fi
}

start_redis() {
  case "$REDIS_STATE" in
  ours) log "Redis already running (pid $(redis_pid || echo '?')), checking it answers" ;;
  foreign)
    log "Redis: a server not started from $SERVICES_DIR already answers on $REDIS_URL: reusing it ('stop' leaves it alone)"
    return 0
    ;;
  absent)
    ensure_redis_installed
    write_redis_config
    log "starting Redis on $REDIS_URL"
    rm -f "$REDIS_PID"
    redis-server "$REDIS_CONF" </dev/null >/dev/null 2>&1 9>&- || {
      print_log_tail "$REDIS_LOG"
      die "redis-server failed to start; see $REDIS_LOG"
    }
    ;;
  esac
  local deadline=$((SECONDS + READY_TIMEOUT)) t0=$SECONDS
  until redis_answers "$REDIS_PORT"; do
    # redis-server forks before binding: a failed start shows as no live pid after a moment.
    if ((SECONDS - t0 >= 3)) && ! redis_pid >/dev/null; then
      print_log_tail "$REDIS_LOG"
      die "Redis exited during start-up; see $REDIS_LOG"
    fi
    if ((SECONDS >= deadline)); then
      print_log_tail "$REDIS_LOG"
      die "Redis did not answer PING on $REDIS_URL within ${READY_TIMEOUT}s (TASTE_SERVICES_TIMEOUT); see $REDIS_LOG"
    fi
    sleep 0.2
  done
  log "Redis ready (pid $(redis_pid || echo '?, not started by this script'))"
}

# ---------------------------------------------------------------------------------------------
# Redis Cluster (optional, 'cluster ...'): the same keys and Lua scripts must work on a Cluster
# (users in {hash tags}), so the store tests run a second time against one. Masters only: the
# point is slot routing (MOVED, per-slot pipelines), not failover.

read -r -a CLUSTER_PORTS <<<"${TASTE_REDIS_CLUSTER_PORTS:-37001 37002 37003}"
readonly CLUSTER_PORTS
readonly CLUSTER_DIR="$SERVICES_DIR/redis-cluster"

cluster_node_dir() { printf '%s/%s' "$CLUSTER_DIR" "$1"; }
cluster_node_pid() { live_pid "$(cluster_node_dir "$1")/redis.pid" "redis-server"; }

# cluster_info PORT FIELD: one field of CLUSTER INFO on that node (empty when it doesn't answer).
cluster_info() {
  timeout 3 redis-cli -h "$HOST" -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

# True when every node answers, sees all the others and serves all 16384 slots.
cluster_healthy() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    [[ "$(cluster_info "$port" cluster_state)" == ok &&
      "$(cluster_info "$port" cluster_known_nodes)" == "${#CLUSTER_PORTS[@]}" &&
      "$(cluster_info "$port" cluster_slots_assigned)" == 16384 ]] || return 1
  done
}

# True when no node has joined a cluster or owns a slot yet.
cluster_fresh() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    [[ "$(cluster_info "$port" cluster_known_nodes)" == 1 && "$(cluster_info "$port" cluster_slots_assigned)" == 0 ]] || return 1
  done
}

write_cluster_node_config() {
  local dir
  dir="$(cluster_node_dir "$1")"
  mkdir -p "$dir"
  cat >"$dir/redis.conf" <<EOF
# Generated by deploy/local/services.sh on every 'cluster start': edit the script, not this file.
bind $HOST
port $1
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
cluster-enabled yes
# Membership and slot ownership survive restarts here; the data does not (dev/test store).
cluster-config-file nodes.conf
cluster-node-timeout 5000
save ""
appendonly no
EOF
}

start_cluster_node() {
  local port="$1" dir pid deadline
  dir="$(cluster_node_dir "$port")"
  if pid="$(cluster_node_pid "$port")"; then
    log "Redis Cluster node $port already running (pid $pid)"
    return 0
  fi
  port_open "$port" &&
    die "port $port is taken by something not started from $CLUSTER_DIR (see: ss -ltnp 'sport = :$port'); free it or set TASTE_REDIS_CLUSTER_PORTS"
  write_cluster_node_config "$port"
  rm -f "$dir/redis.pid"
  redis-server "$dir/redis.conf" </dev/null >/dev/null 2>&1 9>&- || {
    print_log_tail "$dir/redis.log"
    die "redis-server (cluster node $port) failed to start; see $dir/redis.log"
  }
  deadline=$((SECONDS + READY_TIMEOUT))
  until redis_answers "$port"; do
    if ((SECONDS >= deadline)); then
      print_log_tail "$dir/redis.log"
      die "Redis Cluster node $port did not answer PING within ${READY_TIMEOUT}s; see $dir/redis.log"
    fi
    sleep 0.2
  done
}

# Forms the cluster from scratch: nodes that know of an earlier, different layout (e.g. another
# TASTE_REDIS_CLUSTER_PORTS, or a create cut short) are emptied and reset first.
create_cluster() {
  local port addrs=() out
  for port in "${CLUSTER_PORTS[@]}"; do
    if [[ "$(cluster_info "$port" cluster_known_nodes)" != 1 || "$(cluster_info "$port" cluster_slots_assigned)" != 0 ]]; then
      log "Redis Cluster node $port holds an old layout: resetting it"
      redis-cli -h "$HOST" -p "$port" flushall >/dev/null 2>&1 || true
      redis-cli -h "$HOST" -p "$port" cluster reset hard >/dev/null ||
        die "CLUSTER RESET on $HOST:$port failed"
    fi
    addrs+=("$HOST:$port")
  done
  log "creating the Redis Cluster: ${addrs[*]} (masters only)"
  if ! out="$(redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes 2>&1 9>&-)"; then
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
    die "redis-cli --cluster create failed"
  fi
}

cluster_urls() {
  local port urls=()
  for port in "${CLUSTER_PORTS[@]}"; do urls+=("redis://$HOST:$port"); done
  (IFS=,; printf '%s' "${urls[*]}")
}

cmd_cluster_start() {
  take_lock
  ((${#CLUSTER_PORTS[@]} >= 3)) || die "a Redis Cluster needs at least 3 masters; TASTE_REDIS_CLUSTER_PORTS has ${#CLUSTER_PORTS[@]}"
  ensure_redis_installed
  local port
  for port in "${CLUSTER_PORTS[@]}"; do start_cluster_node "$port"; done
  # Restarted nodes re-form the cluster from nodes.conf by themselves: give them a moment.
  # Fresh nodes (each knows only itself) are formed at once.
  local deadline=$((SECONDS + 10))
  if ! cluster_fresh; then
    until cluster_healthy || ((SECONDS >= deadline)); do sleep 0.3; done
  fi
  cluster_healthy || create_cluster
  deadline=$((SECONDS + READY_TIMEOUT))
  until cluster_healthy; do
    ((SECONDS < deadline)) || die "the Redis Cluster did not reach cluster_state:ok on every node within ${READY_TIMEOUT}s; see $CLUSTER_DIR/*/redis.log"
    sleep 0.3
  done
  log "Redis Cluster ready: $(cluster_urls)"
  log "environment: eval \"\$(bash ${SCRIPT_DIR#"$REPO_ROOT/"}/services.sh cluster env)\""
}

cmd_cluster_stop() {
  take_lock
  local port pid
  for port in "${CLUSTER_PORTS[@]}"; do
    if pid="$(cluster_node_pid "$port")"; then
      stop_pid "Redis Cluster node $port" "$pid" 15
    fi
    rm -f "$(cluster_node_dir "$port")/redis.pid"
  done
}

cmd_cluster_status() {
  if cluster_healthy; then
    echo "[services] Redis Cluster: up, cluster_state:ok on $(cluster_urls)"
  else
    echo "[services] Redis Cluster: DOWN or not formed on $(cluster_urls) (logs: $CLUSTER_DIR/*/redis.log)"
    return 1
  fi
}

cmd_cluster_env() {
  # Seed nodes for the store tests; for `taste` itself use TASTE_REDIS_URL=<same> TASTE_REDIS_CLUSTER=true.
  printf "export TASTE_TEST_REDIS_CLUSTER_URL='%s'\n" "$(cluster_urls)"
}

cmd_cluster() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    if [[ ! "$port" =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 55535)); then
      die "TASTE_REDIS_CLUSTER_PORTS: '$port' is not a port number whose bus port (+10000) fits"
    fi
  done
  case "${1:-}" in
  start) cmd_cluster_start ;;
  stop) cmd_cluster_stop ;;
  restart) cmd_cluster_stop && cmd_cluster_start ;;
  status) cmd_cluster_status ;;
  env) cmd_cluster_env ;;
  *) die "usage: services.sh cluster start | stop | restart | status | env" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Commands

# Serialises start/stop across concurrent callers (e.g. test runners started side by side).
take_lock() {
  mkdir -p "$SERVICES_DIR"
  exec 9>"$SERVICES_DIR/.lock"
  flock -w 600 9 || die "another services.sh has held $SERVICES_DIR/.lock for 10 minutes"
}

print_where() {
  cat <<EOF
[services] Kafka bootstrap: $KAFKA_BROKERS   (controller $HOST:$CONTROLLER_PORT, version $(pom_version))
[services] Redis URL:       $REDIS_URL
[services] data dir:        $SERVICES_DIR
[services] logs:            $KAFKA_LOG  $REDIS_LOG
[services] environment:     eval "\$(bash ${SCRIPT_DIR#"$REPO_ROOT/"}/services.sh env)"
EOF
}

cmd_start() {
  take_lock
  classify_kafka
  classify_redis
  if [[ "$KAFKA_STATE" == absent ]]; then # fail before starting anything
    ensure_java
    kafka_jars_current || ensure_mvn
  fi
  ensure_kcat_installed
  ensure_openssl_installed
  start_redis
  start_kafka
  log "both services answer (${SECONDS}s)"
  print_where
}

cmd_status() {
  local rc=0 pid
  if kafka_answers "$KAFKA_PORT"; then
    pid="pid $(kafka_pid || echo "?, not started by this script")"
    echo "[services] Kafka: up on $KAFKA_BROKERS ($pid)"
  else
    echo "[services] Kafka: DOWN on $KAFKA_BROKERS (log: $KAFKA_LOG)"
    rc=1
  fi
  if redis_answers "$REDIS_PORT"; then
    pid="pid $(redis_pid || echo "?, not started by this script")"
    echo "[services] Redis: up on $REDIS_URL ($pid)"
  else
    echo "[services] Redis: DOWN on $REDIS_URL (log: $REDIS_LOG)"
    rc=1
  fi
  return "$rc"
}

# stop_pid NAME PID GRACE_SECONDS: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local name="$1" pid="$2" grace="$3" i
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { log "$name stopped"; return 0; }
    sleep 0.1
  done
  log "$name still running after ${grace}s: sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "$name (pid $pid) survived SIGKILL"
}

cmd_stop() {
  take_lock
  local pid
  if pid="$(kafka_pid)"; then
    stop_pid Kafka "$pid" 30
  else
    log "Kafka: nothing started by this script is running"
  fi
  rm -f "$KAFKA_PID"
  if pid="$(redis_pid)"; then
    stop_pid Redis "$pid" 15
  else
    log "Redis: nothing started by this script is running"
  fi
  rm -f "$REDIS_PID"
}

cmd_env() {
  printf 'export TASTE_KAFKA_BROKERS=%q\n' "$KAFKA_BROKERS"
  printf 'export TASTE_REDIS_URL=%q\n' "$REDIS_URL"
  if [[ -n "$KAFKA_SECURE_PORT" ]]; then
    printf 'export TASTE_KAFKA_SECURE_BROKERS=%q\n' "$HOST:$KAFKA_SECURE_PORT"
    printf 'export TASTE_KAFKA_SECURE_CA=%q\n' "$KAFKA_TLS_CA"
    printf 'export TASTE_KAFKA_SECURE_USER=%q\n' "$KAFKA_SCRAM_USER"
    printf 'export TASTE_KAFKA_SECURE_PASSWORD=%q\n' "$KAFKA_SCRAM_PASSWORD"
  fi
}

cmd_topics() {
  local action="${1:-}"
  [[ -n "$action" ]] || die "usage: services.sh topics create NAME PARTITIONS | delete NAME | list"
  shift
  ensure_java
  ensure_kafka_jars
  kafka_answers "$KAFKA_PORT" || die "Kafka does not answer on $KAFKA_BROKERS: run 'services.sh start' first"
  local topics=(kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS")
  case "$action" in
  create)
    (($# >= 2)) || die "usage: services.sh topics create NAME PARTITIONS [--config K=V ...]"
    [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer, got '$2'"
    local name="$1" partitions="$2"
    shift 2
    "${topics[@]}" --create --if-not-exists --topic "$name" --partitions "$partitions" \
      --replication-factor 1 "$@"
    log "topic $name: present (asked for $partitions partitions)"
    ;;
  delete)
    (($# == 1)) || die "usage: services.sh topics delete NAME"
    "${topics[@]}" --delete --if-exists --topic "$1"
    ;;
  list) "${topics[@]}" --list ;;
  *) die "unknown topics action '$action' (create | delete | list)" ;;
  esac
}

check_ports() {
  local name port
  for name in TASTE_KAFKA_PORT:$KAFKA_PORT TASTE_KAFKA_CONTROLLER_PORT:$CONTROLLER_PORT \
    TASTE_REDIS_PORT:$REDIS_PORT; do
    port="${name#*:}"
    if [[ ! "$port" =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); then
      die "${name%%:*}='$port' is not a TCP port number"
    fi
  done
  [[ "$KAFKA_PORT" != "$CONTROLLER_PORT" && "$KAFKA_PORT" != "$REDIS_PORT" &&
    "$CONTROLLER_PORT" != "$REDIS_PORT" ]] ||
    die "TASTE_KAFKA_PORT, TASTE_KAFKA_CONTROLLER_PORT and TASTE_REDIS_PORT must differ"
}

main() {
  local arg
  for arg in "$@"; do
    [[ "$arg" == -h || "$arg" == --help ]] && { usage; return 0; }
  done
  check_ports
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
  start) cmd_start ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  restart) cmd_stop && cmd_start ;;
  env) cmd_env ;;
  topics) cmd_topics "$@" ;;
  cluster) cmd_cluster "$@" ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"

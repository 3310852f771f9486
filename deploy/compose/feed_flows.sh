#!/bin/sh
# The flow producer of the compose stack (service `flows`): creates the Kafka topic, then sends a
# wave of pmacct flow records (scripts/demo_feed.ts) every FEED_INTERVAL seconds, with one
# poison message (not JSON, which sluice sets aside as a dead letter) every FEED_POISON_EVERY
# waves (0: never). Runs from the repository root, mounted read only; deno keeps the npm
# packages of deno.lock in its DENO_DIR, not in a node_modules folder.
#
# Settings (environment): KAFKA_BOOTSTRAP_SERVERS (kafka:9092), KAFKA_TOPIC (pmacct.acct),
# FEED_PARTITIONS (3), FEED_RECORDS (200), FEED_INTERVAL (5), FEED_POISON_EVERY (60).
set -eu

BROKERS=${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}
TOPIC=${KAFKA_TOPIC:-pmacct.acct}
PARTITIONS=${FEED_PARTITIONS:-3}
RECORDS=${FEED_RECORDS:-200}
INTERVAL=${FEED_INTERVAL:-5}
POISON_EVERY=${FEED_POISON_EVERY:-60}

feed() {
  deno run --frozen --node-modules-dir=none -A scripts/demo_feed.ts \
    --brokers "$BROKERS" --topic "$TOPIC" "$@"
}

# Creating a topic that exists reuses it, so a restarted container goes on.
until feed --create --partitions "$PARTITIONS"; do
  echo "feed_flows: cannot create topic $TOPIC at $BROKERS yet, trying again in 5 s" >&2
  sleep 5
done

first=0
wave=0
while :; do
  wave=$((wave + 1))
  if [ "$POISON_EVERY" -gt 0 ] && [ $((wave % POISON_EVERY)) -eq 0 ]; then
    set -- --poison
  else
    set --
  fi
  if feed --records "$RECORDS" --first "$first" "$@"; then
    first=$((first + RECORDS))
  else
    echo "feed_flows: wave $wave was not sent, trying again in $INTERVAL s" >&2
  fi
  sleep "$INTERVAL"
done

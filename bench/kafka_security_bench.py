"""What Kafka security costs a service: transactional writes and producer starts over
SASL_SSL (TLS, then SCRAM-SHA-512) with ACLs, next to the same on a plaintext broker, in the
same run.

Usage: python bench/kafka_security_bench.py [--plain-port 19400] [--secure-port 19410]
       [--transactions 400] [--events 10] [--starts 10]

Starts (fresh) a plaintext and a secure local broker on the given ports and stops them after.
On each: `--starts` EventWriter starts (connect, authenticate, InitProducerId for the
transactional id), then `--transactions` transactions of `--events` Virga events each, as
the scheduler (its own user and ACLs on the secure broker). Prints both and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import uuid

from virga_devstack.kafka import KafkaBroker
from virga_devstack.kafka_security import SecureKafkaBroker
from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import new_event
from virga_events.catalog.compute import HostHeartbeat


async def measure(
    settings: KafkaSettings, transactions: int, events: int, starts: int
) -> tuple[float, float]:
    """(mean seconds per writer start, transactions per second)."""
    txn_id = f"{settings.namespace}-scheduler"
    began = time.perf_counter()
    for _ in range(starts):
        writer = EventWriter(settings, transactional_id=txn_id)
        await writer.start()
        await writer.stop()
    per_start = (time.perf_counter() - began) / starts
    topic = event_topic("scheduler", settings.namespace)
    async with EventWriter(settings, transactional_id=txn_id) as writer:
        began = time.perf_counter()
        for n in range(transactions):
            async with writer.transaction() as txn:
                for i in range(events):
                    host = f"h{(n * events + i) % 50}"
                    await txn.append(
                        topic,
                        new_event(
                            HostHeartbeat(running=i),
                            aggregate_id=host,
                            tenant_id=None,
                            producer="scheduler",
                        ),
                    )
        rate = transactions / (time.perf_counter() - began)
    return per_start, rate


async def run(args: argparse.Namespace) -> None:
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    plain_broker = KafkaBroker(args.plain_port)
    secure_broker = SecureKafkaBroker(args.secure_port)
    await asyncio.to_thread(plain_broker.start, fresh=True)
    await asyncio.to_thread(secure_broker.start, fresh=True)
    try:
        plain = KafkaSettings(bootstrap_servers=plain_broker.bootstrap_servers, namespace=namespace)
        await ensure_topics(plain, virga_topics(namespace=namespace))
        await secure_broker.provision(namespace)
        secure = secure_broker.settings("scheduler", namespace)
        rows = []
        for name, settings in (
            ("plaintext (baseline)", plain),
            ("SASL_SSL, SCRAM + ACLs", secure),
        ):
            rows.append(
                (name, *await measure(settings, args.transactions, args.events, args.starts))
            )
    finally:
        await asyncio.to_thread(plain_broker.stop)
        await asyncio.to_thread(secure_broker.stop)
    print(f"{args.transactions} transactions of {args.events} events; {args.starts} writer starts")
    print(f"{'broker':<28} {'writer start (ms)':>18} {'transactions/s':>15}")
    for name, per_start, rate in rows:
        print(f"{name:<28} {per_start * 1000:>18.1f} {rate:>15.1f}")
    (_, base_start, base_rate), (_, sec_start, sec_rate) = rows
    print(
        f"{'secure / plaintext':<28} {sec_start / base_start:>18.2f} {sec_rate / base_rate:>15.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain-port", type=int, default=19400)
    parser.add_argument("--secure-port", type=int, default=19410)
    parser.add_argument("--transactions", type=int, default=400)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--starts", type=int, default=10)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

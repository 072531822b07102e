#!/usr/bin/env node
// kafkajs consumer group with churn against a running Strata broker (run by e2e/groups_test.go).
//
// A group of three consumers on <topic> (which must be empty); one leaves, one joins, while this
// script keeps producing <count> records "<prefix><i>" (idempotent, acks=all, record i to
// partition i mod partitions). Production keeps at most 300 records ahead of consumption, so it
// goes on through both rebalances:
//   1. members 1–3 start; production begins once each holds partitions;
//   2. once a third of the records are processed and member 2 has processed some, member 2
//      disconnects (commits and leaves the group);
//   3. once half are processed, member 4 starts (joins); the last quarter is produced only once
//      it holds partitions, so it processes records too;
//   4. once every record has been processed and every processed offset committed (kafkajs
//      commits after each batch), everyone disconnects and the script prints a JSON summary.
//
// A record may be processed twice: records processed but not yet committed when a rebalance
// takes their partition away are processed again by the next owner (at-least-once). The script
// fails if a record is lost (hang guard), if a value turns up at two offsets (the producer wrote
// it twice), or if any member processes a record below an offset that had already been committed
// for its partition — so every duplicate comes from a rebalance window, never from a commit the
// broker lost or ignored. Commits are known from kafkajs's COMMIT_OFFSETS events, which come after
// the broker accepted a commit.
//
// Usage: node e2e/js/group_churn.js <bootstrap> <topic> <group> <prefix> <count>
'use strict'

const { Kafka, logLevel } = require('kafkajs')

function fail (msg) {
  console.error(msg)
  process.exit(1)
}

async function main () {
  const [bootstrap, topic, groupId, prefix, countArg] = process.argv.slice(2)
  const count = Number(countArg)
  if (!bootstrap || !topic || !groupId || !prefix || !(count >= 100)) {
    fail('usage: group_churn.js <bootstrap> <topic> <group> <prefix> <count ≥ 100>')
  }
  const window = 300 // records produced and not yet processed, at most
  const batch = 20 // records per produce request

  // kafkajs logs errors to stderr (stdout carries only the summary), except
  // rebalance notices (heartbeats answered REBALANCE_IN_PROGRESS), which the
  // timeline records.
  const logCreator = () => ({ namespace, log }) => {
    if (!/rebalancing/.test(log.error)) console.error(`kafkajs ${namespace}: ${log.message} ${JSON.stringify(log)}`)
  }
  const kafka = new Kafka({ clientId: 'e2e-kafkajs-churn', brokers: [bootstrap], logLevel: logLevel.ERROR, logCreator, retry: { retries: 10 } })

  const admin = kafka.admin()
  await admin.connect()
  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  await admin.disconnect()
  const partitions = meta.topics[0].partitions.length

  // Everything below runs on the one JS thread: no locks.
  const valueAt = new Map() // value → "partition/offset" where it was first processed
  const deliveries = new Map() // "partition/offset" → times processed
  const maxOffset = new Map() // partition → highest offset processed
  const committed = new Map() // partition → highest committed offset (the next one to read)
  const timeline = []
  const members = []
  let produced = 0
  let processed = 0
  let duplicates = 0
  let rebalancing = 0
  let crashes = 0
  const t0 = Date.now()
  const note = what => timeline.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`)

  // until(cond) resolves once cond() holds; conditions are checked after every event.
  const waiters = new Set()
  const until = cond => cond() ? Promise.resolve() : new Promise(resolve => waiters.add({ cond, resolve }))
  const check = () => {
    for (const w of waiters) {
      if (w.cond()) {
        waiters.delete(w)
        w.resolve()
      }
    }
  }

  const status = () => JSON.stringify({
    produced,
    distinct: valueAt.size,
    committed: Object.fromEntries(committed),
    members: members.map(m => ({ name: m.name, processed: m.processed, assignment: m.assignment, left: m.left }))
  })
  const guard = setTimeout(() => fail(`timed out: ${status()}\n${timeline.join('\n')}`), 150000)

  function onMessage (m, partition, message) {
    const v = message.value.toString()
    const offset = Number(message.offset)
    const at = `${partition}/${offset}`
    if (!v.startsWith(prefix)) fail(`${m.name} read ${v} at ${at}: not a record of this run`)
    const c = committed.get(partition)
    if (c !== undefined && offset < c) {
      fail(`${m.name} processed ${v} at ${at}, below offset ${c}, which had been committed for partition ${partition}\n${timeline.join('\n')}`)
    }
    const first = valueAt.get(v)
    if (first === undefined) {
      valueAt.set(v, at)
    } else if (first !== at) {
      fail(`${v} is at both ${first} and ${at}: the producer wrote it twice`)
    }
    const n = deliveries.get(at) || 0
    deliveries.set(at, n + 1)
    if (n > 0) duplicates++
    if (!(offset <= maxOffset.get(partition))) maxOffset.set(partition, offset)
    processed++
    m.processed++
    check()
  }

  async function startMember (name) {
    const m = { name, processed: 0, assignment: [], joins: 0, left: false }
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: 30000,
      rebalanceTimeout: 60000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 500,
      retry: { retries: 10 }
    })
    m.consumer = consumer
    consumer.on(consumer.events.GROUP_JOIN, e => {
      m.joins++
      m.assignment = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
      note(`${name} joined${e.payload.isLeader ? ' (leader)' : ''}: partitions [${m.assignment}]`)
      check()
    })
    consumer.on(consumer.events.COMMIT_OFFSETS, e => {
      for (const t of e.payload.topics) {
        if (t.topic !== topic) continue
        for (const p of t.partitions) {
          // kafkajs gives the partition as a string here (an object key).
          const partition = Number(p.partition)
          const o = Number(p.offset)
          if (!(o <= committed.get(partition))) committed.set(partition, o)
        }
      }
      check()
    })
    consumer.on(consumer.events.REBALANCING, () => {
      rebalancing++
      note(`${name} rebalancing`)
    })
    consumer.on(consumer.events.CRASH, e => {
      crashes++
      note(`${name} crashed (restart: ${e.payload.restart}): ${e.payload.error}`)
      if (e.payload.restart === false) fail(`${name} crashed for good: ${e.payload.error}\n${timeline.join('\n')}`)
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ partition, message }) => onMessage(m, partition, message) })
    members.push(m)
    note(`${name} started`)
    return m
  }

  async function leave (m) {
    await m.consumer.disconnect()
    m.left = true
    m.assignment = []
    note(`${m.name} left after processing ${m.processed} records`)
  }

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 10 } })
  await producer.connect()
  async function produceUpTo (limit) {
    while (produced < limit) {
      await until(() => produced - valueAt.size < window)
      const messages = []
      for (let i = produced; i < Math.min(produced + batch, limit); i++) {
        messages.push({ partition: i % partitions, value: prefix + i })
      }
      await producer.send({ topic, acks: -1, messages })
      produced += messages.length
      check()
    }
  }

  // 1. A group of three.
  for (const name of ['member-1', 'member-2', 'member-3']) await startMember(name)
  await until(() => {
    const held = members.flatMap(m => m.assignment)
    return members.every(m => m.assignment.length > 0) && held.length === partitions && new Set(held).size === partitions
  })
  note('the group of three holds every partition')
  let joiner
  const producing = (async () => {
    await produceUpTo(Math.floor(count * 3 / 4))
    await until(() => joiner !== undefined && joiner.assignment.length > 0)
    await produceUpTo(count)
    note('produced every record')
  })()
  producing.catch(err => fail(`produce: ${err && err.stack ? err.stack : err}`))

  // 2. One leaves.
  const leaver = members[1]
  await until(() => valueAt.size >= count / 3 && leaver.processed > 0)
  await leave(leaver)

  // 3. One joins.
  await until(() => valueAt.size >= count / 2)
  joiner = await startMember('member-4')
  check()

  // 4. Everything processed and committed; everyone leaves.
  await producing
  await until(() => valueAt.size === count)
  note('processed every record')
  await until(() => [...maxOffset].every(([p, o]) => committed.get(p) >= o + 1))
  note('committed every processed offset')
  clearTimeout(guard)
  await Promise.all(members.filter(m => !m.left).map(leave))
  await producer.disconnect()

  console.log(JSON.stringify({
    produced,
    distinct: valueAt.size,
    processed,
    duplicates,
    rebalancing,
    crashes,
    members: members.map(m => ({ name: m.name, processed: m.processed, joins: m.joins })),
    timeline
  }))
}

main().catch(err => fail(err && err.stack ? err.stack : String(err)))

#!/usr/bin/env node
// kafkajs round trip against a running Strata broker (run by e2e/js_test.go).
//
// admin.createTopics creates the topic (and reports false when asked again), a producer sends
// value(tag, i) for i < count with acks -1 (half of the sends gzip-compressed), then
// admin.fetchTopicOffsets must report high watermarks adding up to count with low 0, and
// admin.fetchTopicOffsetsByTimestamp for a time before the first record must give offset 0.
// The Go test then reads the topic with franz-go and checks every byte. (kafkajs's consumer, which
// always joins a group, is exercised by group.js.)
//
// Usage: node e2e/js/roundtrip.js <bootstrap> <topic> <count> <tag>
'use strict'

const { Kafka, logLevel, Partitioners, CompressionTypes } = require('kafkajs')

// value must stay byte-identical to recValue in e2e/data_test.go.
function value (tag, i) {
  const head = Buffer.from(`${tag}:${String(i).padStart(7, '0')}:`)
  const n = (i * 37) % 1000
  const filler = Buffer.alloc(n)
  for (let j = 0; j < n; j++) filler[j] = (i * 7 + j) % 256
  return Buffer.concat([head, filler])
}

function fail (msg) {
  console.error(msg)
  process.exit(1)
}

async function main () {
  const [bootstrap, topic, countArg, tag] = process.argv.slice(2)
  const count = Number(countArg)
  if (!bootstrap || !topic || !(count > 0) || !tag) fail('usage: roundtrip.js <bootstrap> <topic> <count> <tag>')

  const kafka = new Kafka({
    clientId: 'e2e-kafkajs',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    retry: { retries: 5 }
  })
  const admin = kafka.admin()
  await admin.connect()
  const before = Date.now() - 60 * 60 * 1000

  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
    waitForLeaders: true
  })
  if (created !== true) fail(`createTopics(${topic}) returned ${created}, want true`)
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] })
  if (again !== false) fail(`createTopics(${topic}) a second time returned ${again}, want false (already exists)`)
  const topics = await admin.listTopics()
  if (!topics.includes(topic)) fail(`listTopics() = ${JSON.stringify(topics)} lacks ${topic}`)

  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner
  })
  await producer.connect()
  const perSend = 500
  const acked = {}
  for (let start = 0, k = 0; start < count; start += perSend, k++) {
    const messages = []
    for (let i = start; i < Math.min(count, start + perSend); i++) {
      messages.push({ key: `k${i}`, value: value(tag, i) })
    }
    const md = await producer.send({
      topic,
      acks: -1,
      compression: k % 2 === 1 ? CompressionTypes.GZIP : CompressionTypes.None,
      messages
    })
    for (const m of md) {
      if (m.errorCode !== 0) fail(`send: partition ${m.partition} error code ${m.errorCode}`)
      acked[m.partition] = (acked[m.partition] || 0) + 1
    }
  }
  await producer.disconnect()

  const offsets = await admin.fetchTopicOffsets(topic)
  let total = 0
  for (const o of offsets) {
    if (o.low !== '0') fail(`fetchTopicOffsets: partition ${o.partition} low ${o.low}, want 0`)
    if (o.high !== o.offset) fail(`fetchTopicOffsets: partition ${o.partition} high ${o.high} != offset ${o.offset}`)
    total += Number(o.high)
  }
  if (offsets.length !== 3) fail(`fetchTopicOffsets returned ${offsets.length} partitions, want 3`)
  if (total !== count) fail(`fetchTopicOffsets: high watermarks add up to ${total}, want ${count}: ${JSON.stringify(offsets)}`)

  const byTs = await admin.fetchTopicOffsetsByTimestamp(topic, before)
  for (const o of byTs) {
    if (o.offset !== '0') fail(`fetchTopicOffsetsByTimestamp(before): partition ${o.partition} offset ${o.offset}, want 0`)
  }
  await admin.disconnect()
  console.log(JSON.stringify({ topic, produced: count, offsets }))
}

main().catch(e => fail(`kafkajs: ${e && e.stack ? e.stack : e}`))

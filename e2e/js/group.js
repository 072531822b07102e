#!/usr/bin/env node
// kafkajs consumer group against a running Strata broker (run by e2e/groups_test.go).
//
// Starts <members> consumers in group <group> on <topic>; they consume (kafkajs commits the
// offsets it has processed after each batch) until every value starting with <prefix> — there
// must be <count> distinct ones — has been processed. A value without the prefix is a record
// whose offset had been committed before: the script fails. Then every consumer disconnects
// (committing what it processed and leaving the group) and the script prints a JSON summary.
//
// Usage: node e2e/js/group.js <bootstrap> <topic> <group> <prefix> <count> <members>
'use strict'

const { Kafka, logLevel } = require('kafkajs')

function fail (msg) {
  console.error(msg)
  process.exit(1)
}

async function main () {
  const [bootstrap, topic, groupId, prefix, countArg, membersArg] = process.argv.slice(2)
  const count = Number(countArg)
  const members = Number(membersArg)
  if (!bootstrap || !topic || !groupId || !prefix || !(count > 0) || !(members > 0)) {
    fail('usage: group.js <bootstrap> <topic> <group> <prefix> <count> <members>')
  }
  const kafka = new Kafka({ clientId: 'e2e-kafkajs-group', brokers: [bootstrap], logLevel: logLevel.WARN, retry: { retries: 10 } })

  const seen = new Map()
  let total = 0
  let resolveAll
  const all = new Promise(resolve => { resolveAll = resolve })
  const guard = setTimeout(() => fail(`timed out with ${seen.size} of ${count} records`), 150000)

  const consumers = []
  for (let m = 0; m < members; m++) {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const v = message.value.toString()
        if (!v.startsWith(prefix)) fail(`member ${m} re-read ${v} at ${partition}/${message.offset}: it was committed`)
        total++
        seen.set(v, (seen.get(v) || 0) + 1)
        if (seen.size === count) resolveAll()
      }
    })
    consumers.push(consumer)
  }
  await all
  clearTimeout(guard)
  // Let the last batches' commits go out, then leave.
  await new Promise(resolve => setTimeout(resolve, 1000))
  for (const c of consumers) await c.disconnect()
  console.log(JSON.stringify({ distinct: seen.size, processed: total, members }))
}

main().catch(err => fail(err && err.stack ? err.stack : String(err)))

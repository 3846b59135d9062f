#!/usr/bin/env node
// Check a CAR file with the reference JavaScript implementations, independently of ipldwrite.
//
//   node js/car-verify.mjs <file.car> [--order]
//
// Streams the blocks with @ipld/car, checks each block's hash with multiformats, decodes
// dag-cbor and dag-pb blocks with @ipld/dag-cbor and @ipld/dag-pb and re-encodes them (the
// bytes must come back identical: canonical form), walks the DAG from the single root, and
// for CARv2 also reads every block back through @ipld/car's random-access readers. Prints one
// JSON report on stdout; exits 0 when nothing is wrong, 1 when something is, 2 when the file
// cannot be read at all.

import fs from 'node:fs'
import { CarBlockIterator } from '@ipld/car/iterator'
import { CarIndexedReader } from '@ipld/car/indexed-reader'
import { CarReader } from '@ipld/car/reader'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { inspectCbor } from './cbor-canonical.mjs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

const hashers = { [sha256.code]: sha256, [identity.code]: identity }

// The links of a decoded dag-cbor value, in document order.
function cborLinks (value, out = []) {
  const cid = CID.asCID(value)
  if (cid) {
    out.push(cid)
  } else if (Array.isArray(value)) {
    for (const item of value) cborLinks(item, out)
  } else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    for (const key of Object.keys(value)) cborLinks(value[key], out)
  }
  return out
}

// Decode, re-encode and compare; returns { links, canonical } or throws on undecodable bytes.
function inspect (cid, bytes) {
  switch (cid.code) {
    case raw.code:
      return { links: [], canonical: true }
    case dagCbor.code: {
      // Canonical up to JavaScript's int/float conflation: see cbor-canonical.mjs.
      const { value, canonical } = inspectCbor(bytes)
      return { links: cborLinks(value), canonical }
    }
    case dagPb.code: {
      const node = dagPb.decode(bytes)
      return {
        links: node.Links.map((l) => l.Hash),
        canonical: equals(dagPb.encode(dagPb.prepare(node)), bytes)
      }
    }
    default:
      throw new Error(`unsupported codec 0x${cid.code.toString(16)}`)
  }
}

async function main () {
  const args = process.argv.slice(2)
  const path = args.find((a) => !a.startsWith('--'))
  const wantOrder = args.includes('--order')
  if (!path) {
    console.error('usage: node car-verify.mjs <file.car> [--order]')
    process.exit(2)
  }

  const iterator = await CarBlockIterator.fromIterable(fs.createReadStream(path))
  const roots = (await iterator.getRoots()).map(String)
  const blocks = new Map() // cid string → links (strings)
  const order = []
  const report = {
    version: iterator.version,
    roots,
    blocks: 0,
    duplicates: [],
    missing: [],
    unreachable: [],
    noncanonical: [],
    badHash: [],
    undecodable: [],
    errors: []
  }

  for await (const { cid, bytes } of iterator) {
    const key = cid.toString()
    report.blocks++
    order.push(key)
    if (blocks.has(key)) {
      report.duplicates.push(key)
      continue
    }
    const hasher = hashers[cid.multihash.code]
    if (!hasher) {
      report.badHash.push(`${key}: unsupported multihash 0x${cid.multihash.code.toString(16)}`)
    } else {
      const digest = await hasher.digest(bytes)
      if (!equals(digest.bytes, cid.multihash.bytes)) report.badHash.push(key)
    }
    try {
      const { links, canonical } = inspect(cid, bytes)
      if (!canonical) report.noncanonical.push(key)
      blocks.set(key, links)
    } catch (err) {
      report.undecodable.push(`${key}: ${err.message}`)
      blocks.set(key, [])
    }
  }

  if (roots.length !== 1) report.errors.push(`expected exactly one root, found ${roots.length}`)

  // Depth-first walk from the roots; identity CIDs carry their block inline.
  const visited = new Set()
  const stack = roots.map((r) => CID.parse(r)).reverse()
  while (stack.length) {
    const cid = stack.pop()
    const key = cid.toString()
    if (visited.has(key)) continue
    visited.add(key)
    let links
    if (blocks.has(key)) {
      links = blocks.get(key)
    } else if (cid.multihash.code === identity.code) {
      try {
        links = inspect(cid, cid.multihash.digest).links
      } catch (err) {
        report.undecodable.push(`${key}: ${err.message}`)
        continue
      }
    } else {
      report.missing.push(key)
      continue
    }
    for (let i = links.length - 1; i >= 0; i--) stack.push(links[i])
  }
  for (const key of blocks.keys()) {
    if (!visited.has(key)) report.unreachable.push(key)
  }

  // Random access: CarReader loads any CAR (v1 or v2) whole; CarIndexedReader indexes the
  // file and reads each block at its offset. Both must return the bytes the stream gave.
  const bytes = fs.readFileSync(path)
  const whole = await CarReader.fromBytes(bytes)
  const indexed = await CarIndexedReader.fromFile(path)
  try {
    const streamed = await CarBlockIterator.fromIterable(fs.createReadStream(path))
    let checked = 0
    for await (const { cid, bytes: data } of streamed) {
      for (const [name, reader] of [['CarReader', whole], ['CarIndexedReader', indexed]]) {
        const block = await reader.get(cid)
        if (!block || !equals(block.bytes, data)) {
          report.errors.push(`${name} returned different bytes for ${cid}`)
        }
      }
      checked++
    }
    report.randomAccess = { checked, carReaderVersion: whole.version, indexedReaderVersion: indexed.version }
  } finally {
    await indexed.close()
  }

  if (wantOrder) report.order = order
  const bad = ['duplicates', 'missing', 'unreachable', 'noncanonical', 'badHash', 'undecodable', 'errors']
    .some((k) => report[k].length > 0)
  console.log(JSON.stringify(report, null, 2))
  process.exit(bad ? 1 : 0)
}

main().catch((err) => {
  console.log(JSON.stringify({ fatal: String(err && err.message ? err.message : err) }))
  process.exit(2)
})

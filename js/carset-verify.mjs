#!/usr/bin/env node
// Check a set of CAR files that together hold one DAG (a sharded export, or the per-task CARs
// of a distributed write), with the reference JavaScript implementations only.
//
//   node js/carset-verify.mjs ROOT_CID file.car [file.car ...]
//
// Reads every file with @ipld/car's CarIndexedReader, checks each block's hash, decodes
// dag-cbor / dag-pb blocks and re-encodes them (canonical bytes), and walks the DAG from ROOT
// across all files. Prints one JSON report; exits 0 when every reachable block is present,
// sound and canonical, 1 otherwise, 2 when a file cannot be read at all.
import { CarIndexedReader } from '@ipld/car/indexed-reader'
import * as dagCbor from '@ipld/dag-cbor'
import { inspectCbor } from './cbor-canonical.mjs'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { equals } from 'multiformats/bytes'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'

function cborLinks (value, out = []) {
  const cid = CID.asCID(value)
  if (cid) out.push(cid)
  else if (Array.isArray(value)) for (const item of value) cborLinks(item, out)
  else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    for (const key of Object.keys(value)) cborLinks(value[key], out)
  }
  return out
}

async function main () {
  const [rootText, ...files] = process.argv.slice(2)
  if (!rootText || files.length === 0) {
    console.error('usage: node carset-verify.mjs ROOT_CID file.car [file.car ...]')
    process.exit(2)
  }
  const root = CID.parse(rootText)
  const readers = []
  const report = { files: files.length, roots: [], reachable: 0, missing: [], badHash: [], noncanonical: [], undecodable: [] }
  try {
    for (const file of files) {
      const reader = await CarIndexedReader.fromFile(file)
      readers.push(reader)
      report.roots.push((await reader.getRoots()).map(String))
    }
    const get = async (cid) => {
      for (const reader of readers) {
        const block = await reader.get(cid)
        if (block) return block.bytes
      }
      return undefined
    }
    const seen = new Set()
    const stack = [root]
    while (stack.length) {
      const cid = stack.pop()
      const key = cid.toString()
      if (seen.has(key)) continue
      seen.add(key)
      let bytes
      if (cid.multihash.code === identity.code) bytes = cid.multihash.digest
      else bytes = await get(cid)
      if (bytes === undefined) { report.missing.push(key); continue }
      report.reachable++
      if (cid.multihash.code === sha256.code) {
        const digest = await sha256.digest(bytes)
        if (!equals(digest.bytes, cid.multihash.bytes)) { report.badHash.push(key); continue }
      }
      let links = []
      try {
        if (cid.code === dagCbor.code) {
          const { value, canonical } = inspectCbor(bytes)
          if (!canonical) report.noncanonical.push(key)
          links = cborLinks(value)
        } else if (cid.code === dagPb.code) {
          const node = dagPb.decode(bytes)
          if (!equals(dagPb.encode(dagPb.prepare(node)), bytes)) report.noncanonical.push(key)
          links = node.Links.map((l) => l.Hash)
        } else if (cid.code !== raw.code) {
          throw new Error(`unsupported codec 0x${cid.code.toString(16)}`)
        }
      } catch (err) {
        report.undecodable.push(`${key}: ${err.message}`)
      }
      for (let i = links.length - 1; i >= 0; i--) stack.push(links[i])
    }
  } finally {
    for (const reader of readers) await reader.close()
  }
  const bad = ['missing', 'badHash', 'noncanonical', 'undecodable'].some((k) => report[k].length > 0)
  console.log(JSON.stringify(report))
  process.exit(bad ? 1 : 0)
}

main().catch((err) => {
  console.log(JSON.stringify({ fatal: String(err && err.message ? err.message : err) }))
  process.exit(2)
})

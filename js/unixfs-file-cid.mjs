// Import one file with ipfs-unixfs-importer and print its root CID: the reference our UnixFS
// writer is checked against.
//
//   node unixfs-file-cid.mjs FILE [OPTIONS_JSON] [--blocks]
//
// OPTIONS_JSON holds importer options (e.g. {"profile": "unixfs-v1-2025"}), plus two that the
// importer only takes as functions: "chunkSize" (fixed-size chunker) and "maxChildrenPerNode"
// (balanced layout). With --blocks, print JSON {root, blocks: {cid: base64}} instead, so a
// test can read the importer's DAG with our reader.
import { readFile } from 'node:fs/promises'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importBytes } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const args = process.argv.slice(2)
const dumpBlocks = args.includes('--blocks')
const [path, json] = args.filter((a) => a !== '--blocks')
if (path === undefined) {
  console.error('usage: node unixfs-file-cid.mjs FILE [OPTIONS_JSON] [--blocks]')
  process.exit(2)
}
const { chunkSize, maxChildrenPerNode, ...options } = JSON.parse(json ?? '{}')
if (chunkSize !== undefined) options.chunker = fixedSize({ chunkSize })
if (maxChildrenPerNode !== undefined) options.layout = balanced({ maxChildrenPerNode })

// MemoryBlockstore keys blocks by multihash and forgets the codec, so record the CIDs here.
const blocks = new Map()
class RecordingBlockstore extends MemoryBlockstore {
  put (cid, bytes, opts) {
    blocks.set(cid.toString(), bytes)
    return super.put(cid, bytes, opts)
  }
}

const entry = await importBytes(await readFile(path), new RecordingBlockstore(), options)
if (dumpBlocks) {
  const out = {}
  for (const [cid, bytes] of blocks) out[cid] = Buffer.from(bytes).toString('base64')
  console.log(JSON.stringify({ root: entry.cid.toString(), blocks: out }))
} else {
  console.log(entry.cid.toString())
}

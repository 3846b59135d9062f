// Import a directory tree with ipfs-unixfs-importer and print the root CID of the directory:
// the reference our UnixFS directory writer (ipldwrite.convert.to_unixfs) is checked against.
//
//   node unixfs-dir-cid.mjs DIR [OPTIONS_JSON] [--blocks]
//
// Only regular files are imported (as `ipfs add -r` of a tree without empty directories
// would), with no mode and no mtime. OPTIONS_JSON holds importer options; the default is
// {"profile": "unixfs-v1-2025"}. With --blocks, print JSON {root, blocks: {cid: base64}}.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer } from 'ipfs-unixfs-importer'

const args = process.argv.slice(2)
const dumpBlocks = args.includes('--blocks')
const [dir, json] = args.filter((a) => a !== '--blocks')
if (dir === undefined) {
  console.error('usage: node unixfs-dir-cid.mjs DIR [OPTIONS_JSON] [--blocks]')
  process.exit(2)
}
const options = JSON.parse(json ?? '{"profile": "unixfs-v1-2025"}')

function * files (root, prefix = '') {
  for (const entry of readdirSync(join(root, prefix), { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`
    if (entry.isDirectory()) yield * files(root, path)
    else if (entry.isFile()) yield { path, content: readFileSync(join(root, path)) }
  }
}

const blocks = new Map()
class RecordingBlockstore extends MemoryBlockstore {
  put (cid, bytes, opts) {
    blocks.set(cid.toString(), bytes)
    return super.put(cid, bytes, opts)
  }
}

let root
for await (const entry of importer(files(dir), new RecordingBlockstore(), { ...options, wrapWithDirectory: true })) {
  if (entry.path === '') root = entry.cid
}
if (dumpBlocks) {
  const out = {}
  for (const [cid, bytes] of blocks) out[cid] = Buffer.from(bytes).toString('base64')
  console.log(JSON.stringify({ root: root.toString(), blocks: out }))
} else {
  console.log(root.toString())
}

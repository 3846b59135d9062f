// Fetch blocks and UnixFS files from a trustless gateway with Helia (@helia/http's block
// broker: every block is fetched with ?format=raw and hashed against its CID before use).
// Usage: node helia-fetch.mjs GATEWAY_URL REQUESTS_JSON
//   REQUESTS_JSON: [{"kind": "block", "cid": "..."}, {"kind": "file", "cid": "...", "path": "a/b"}]
// Prints one JSON array: base64 of each block or file, or {"error": message}.
import { createHeliaLight } from 'helia'
import { trustlessGatewayBlockBroker } from '@helia/trustless-gateway-client'
import { fallbackRouter } from '@helia/fallback-router'
import { unixfs } from '@helia/unixfs'
import { CID } from 'multiformats/cid'

// Helia's dependencies target Node 22; on Node 20 only this ES2024 helper is missing.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new Promise((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

const [gateway, requestsJson] = process.argv.slice(2)
const helia = await createHeliaLight({
  // Only the gateway given: it is on loopback (allowLocal) over plain HTTP (allowInsecure).
  blockBrokers: [trustlessGatewayBlockBroker({ allowInsecure: true, allowLocal: true })],
  // Helia 7 waits for its non-fallback routers to finish before asking fallback ones, and
  // with none at all it waits for ever: an empty router lets it move on to our gateway.
  routers: [{ name: 'none', async * findProviders () {} }, fallbackRouter({ gateways: [gateway] })]
}).start()

const fs = unixfs(helia)
const out = []
for (const request of JSON.parse(requestsJson)) {
  const signal = AbortSignal.timeout(30000)
  try {
    const cid = CID.parse(request.cid)
    if (request.kind === 'block') {
      const got = await helia.blockstore.get(cid, { signal })
      const parts = []
      if (got instanceof Uint8Array) parts.push(got)
      else for await (const part of got) parts.push(part) // newer blockstores stream blocks
      out.push(Buffer.concat(parts).toString('base64'))
    } else {
      const chunks = []
      for await (const chunk of fs.cat(cid, { path: request.path, signal })) chunks.push(chunk)
      out.push(Buffer.concat(chunks).toString('base64'))
    }
  } catch (err) {
    out.push({ error: `${err.name}: ${err.message}` })
  }
}
console.log(JSON.stringify(out))
await helia.stop()

// Is a dag-cbor block in canonical form? Decode, re-encode with @ipld/dag-cbor, and compare the
// two token streams. JavaScript has one number type, so a float with an integral value (an
// attribute like `valid_min: 0.0`) comes back encoded as an integer; that one difference is
// allowed when the original is a 64-bit float of the same value. Anything else that differs
// (key order, non-minimal lengths, 16/32-bit floats) makes the block non-canonical.
import { Tokenizer, Type } from 'cborg'
import * as dagCbor from '@ipld/dag-cbor'
import { equals } from 'multiformats/bytes'

function tokens (bytes) {
  const tokenizer = new Tokenizer(bytes, { allowIndefinite: true })
  const out = []
  while (!tokenizer.done()) out.push(tokenizer.next())
  return out
}

function sameToken (a, b) {
  if (a.type === b.type && a.encodedLength === b.encodedLength) {
    if (a.value instanceof Uint8Array) return b.value instanceof Uint8Array && equals(a.value, b.value)
    return a.value === b.value
  }
  // float64 x.0 in the block, re-encoded by JS as the integer x
  return a.type === Type.float && a.encodedLength === 9 && Number(b.value) === a.value &&
    (b.type === Type.uint || b.type === Type.negint)
}

// Returns { value, canonical } or throws on undecodable bytes.
export function inspectCbor (bytes) {
  const value = dagCbor.decode(bytes)
  const again = dagCbor.encode(value)
  if (equals(again, bytes)) return { value, canonical: true }
  const a = tokens(bytes)
  const b = tokens(again)
  const canonical = a.length === b.length && a.every((t, i) => sameToken(t, b[i]))
  return { value, canonical }
}

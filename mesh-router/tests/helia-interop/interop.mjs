// The Helia side of the Pollen <-> Helia interop test (driven by run.sh).
//
//   node interop.mjs gen   --size N --seed S --out FILE   deterministic test bytes
//   node interop.mjs cid   FILE                           root CID of Helia's addBytes (offline, in memory)
//   node interop.mjs fetch --peer MULTIADDR/p2p/ID --cid CID --out FILE [--timeout-ms T] [--idle-ms I]
//                          a fresh Helia node dials the peer and `cat`s the file over Bitswap
//   node interop.mjs serve --file FILE [--lifetime-s S]
//                          a Helia node adds FILE, listens on 127.0.0.1, prints one JSON line
//                          {"peer_id","listen","cid","bytes"} and serves until SIGTERM
//
// The Helia node is libp2p over TCP only: noise, yamux, identify and Bitswap. No mDNS, bootstrap, DHT, AutoNAT,
// relay, UPnP, HTTP gateways or delegated routing: the only network it touches is the loopback peer it is given.
// Machine-readable results go to stdout as one JSON line; diagnostics go to stderr (set DEBUG=libp2p:*,helia:*
// for libp2p's own logs).

import './polyfill.mjs'
import { readFileSync, writeFileSync } from 'node:fs'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'

const BITSWAP = '/ipfs/bitswap/1.2.0'

function log (...args) {
  console.error('[helia]', ...args)
}

function fail (message, code = 1) {
  log(`error: ${message}`)
  process.exit(code)
}

// Minimal `--name value` parser; positional arguments are collected in `_`.
function parseArgs (argv) {
  const out = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const value = argv[i + 1]
      if (value == null) fail(`${a} needs a value`, 2)
      out[a.slice(2)] = value
      i++
    } else {
      out._.push(a)
    }
  }
  return out
}

function need (args, name) {
  if (args[name] == null) fail(`missing --${name}`, 2)
  return args[name]
}

// Exits the process if it is still alive after `ms` (a guard against any hang; unref'd so it never keeps the
// process alive by itself).
function deadline (ms, what) {
  setTimeout(() => fail(`${what}: no result after ${ms} ms`, 124), ms).unref()
}

// Deterministic bytes: xorshift32 seeded with `seed`, so every 1 MiB chunk differs (no duplicate blocks).
function generate (size, seed) {
  const out = new Uint8Array(size)
  let x = (seed >>> 0) || 0x9e3779b9
  let i = 0
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
    out[i + 1] = (x >>> 8) & 0xff
    out[i + 2] = (x >>> 16) & 0xff
    out[i + 3] = x >>> 24
  }
  for (; i < size; i++) out[i] = (i * 31 + 7) % 251
  return out
}

// The root CID Helia's `addBytes` gives with default options, computed offline in a throwaway blockstore.
async function localCid (bytes) {
  const fs = unixfs({ blockstore: new MemoryBlockstore() })
  return fs.addBytes(bytes)
}

async function createNode (listen) {
  const helia = withBitswap(
    withLibp2pLight(
      createHeliaLight({ blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore() }),
      {
        addresses: { listen },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        peerDiscovery: [],
        services: { identify: identify() }
      }
    )
  )
  await helia.start()
  return helia
}

// Resolves with the next identify result ({ peer, protocols, agent }) of this node (the fetch dials one peer), or with
// empty protocols after `ms`. Call before dialing: the event may fire before `dial` returns.
function identified (helia, ms) {
  let onIdentify
  const result = new Promise(resolve => {
    const timer = setTimeout(() => resolve({ peer: null, protocols: [], agent: null }), ms)
    onIdentify = evt => {
      clearTimeout(timer)
      const { peerId, protocols, agentVersion } = evt.detail
      resolve({ peer: peerId.toString(), protocols, agent: agentVersion ?? null })
    }
    helia.libp2p.addEventListener('peer:identify', onIdentify, { once: true })
  })
  return result.finally(() => helia.libp2p.removeEventListener('peer:identify', onIdentify))
}

async function cmdGen (args) {
  const size = Number(need(args, 'size'))
  const seed = Number(need(args, 'seed'))
  if (!Number.isSafeInteger(size) || size < 0) fail(`bad --size ${args.size}`, 2)
  writeFileSync(need(args, 'out'), generate(size, seed))
}

async function cmdCid (args) {
  const file = args._[0] ?? fail('cid needs a FILE', 2)
  console.log((await localCid(readFileSync(file))).toString())
}

async function cmdFetch (args) {
  const timeoutMs = Number(args['timeout-ms'] ?? 120000)
  deadline(timeoutMs + 10000, 'fetch')
  const peer = multiaddr(need(args, 'peer'))
  const cid = CID.parse(need(args, 'cid'))
  const out = need(args, 'out')
  const helia = await createNode([])
  const signal = AbortSignal.timeout(timeoutMs)
  const started = Date.now()
  const identify = identified(helia, 10000)
  const conn = await helia.libp2p.dial(peer, { signal })
  log(`connected to ${conn.remotePeer} at ${conn.remoteAddr}`)
  const remote = await identify
  log(`identify: agent ${remote.agent}, protocols ${JSON.stringify(remote.protocols)}`)
  if (!remote.protocols.includes(BITSWAP)) {
    await helia.stop()
    fail(`the peer's identify does not list ${BITSWAP}: Helia will never send it wants`)
  }
  // --idle-ms: stay connected but quiet first (Helia drops idle inbound Bitswap streams after 10 s).
  const idleMs = Number(args['idle-ms'] ?? 0)
  if (idleMs > 0) await new Promise(resolve => setTimeout(resolve, idleMs))
  const chunks = []
  let bytes = 0
  for await (const chunk of unixfs(helia).cat(cid, { signal })) {
    chunks.push(chunk)
    bytes += chunk.byteLength
  }
  const ms = Date.now() - started
  writeFileSync(out, Buffer.concat(chunks))
  // ms: dial + identify + cat.
  const result = { cid: cid.toString(), bytes, ms, peer: conn.remotePeer.toString(), agent: remote.agent }
  await helia.stop()
  console.log(JSON.stringify(result))
}

async function cmdServe (args) {
  const lifetimeS = Number(args['lifetime-s'] ?? 300)
  const bytes = readFileSync(need(args, 'file'))
  const helia = await createNode(['/ip4/127.0.0.1/tcp/0'])
  const cid = await unixfs(helia).addBytes(bytes)
  helia.libp2p.addEventListener('peer:identify', evt => {
    const { peerId, agentVersion, protocols } = evt.detail
    log(`identify from ${peerId}: agent ${agentVersion}, bitswap ${protocols.includes(BITSWAP)}`)
  })
  const listen = helia.libp2p.getMultiaddrs().map(ma => ma.toString())
  console.log(JSON.stringify({ peer_id: helia.libp2p.peerId.toString(), listen, cid: cid.toString(), bytes: bytes.length }))
  let stopping = false
  const stop = async (signal) => {
    if (stopping) return
    stopping = true
    log(`${signal}: stopping`)
    setTimeout(() => fail('serve: helia.stop() hung', 1), 10000).unref()
    await helia.stop()
    process.exit(0)
  }
  process.on('SIGTERM', () => { stop('SIGTERM') })
  process.on('SIGINT', () => { stop('SIGINT') })
  // Never outlive the driver by more than the lifetime, even if nobody stops us.
  setTimeout(() => fail(`serve: not stopped within ${lifetimeS} s`, 124), lifetimeS * 1000)
}

const commands = { gen: cmdGen, cid: cmdCid, fetch: cmdFetch, serve: cmdServe }
const [name, ...rest] = process.argv.slice(2)
const command = commands[name] ?? fail(`usage: interop.mjs ${Object.keys(commands).join('|')} ...`, 2)
try {
  await command(parseArgs(rest))
  // serve keeps running until a signal; the others are done: do not wait for stray timers or sockets.
  if (name !== 'serve') process.exit(0)
} catch (err) {
  fail(err?.stack ?? String(err))
}

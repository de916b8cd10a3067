// Helia 7 and libp2p 3 target Node 22. On Node 20 the only missing language
// feature they use is `Promise.withResolvers` (Node 22+); add it before any of
// them is imported. (The other Node 22 requirement, undici 8, is avoided by the
// `overrides` pin to undici 7 in package.json.)
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}

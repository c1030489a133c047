import t from 'tap'
import { readFileSync } from 'node:fs'
import { configFromEnv, normalizeConfig, SETTINGS } from '../src/config.js'

t.test('defaults follow the documented contract', async (t) => {
  const config = normalizeConfig()
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.upstream.baseUrl, 'https://api.cometapi.com')
  t.equal(config.upstream.key, undefined)
  t.equal(config.batch.maxIds, 100)
  t.equal(config.cache.ttlMs, 2000)
  t.equal(config.cache.maxEntries, 10000)
  t.equal(config.upstream.timeoutMs, 10000)
  t.equal(config.logLevel, 'info')
})

t.test('returns a fresh, deeply frozen object', async (t) => {
  const a = normalizeConfig()
  const b = normalizeConfig()
  t.not(a, b)
  t.ok(Object.isFrozen(a) && Object.isFrozen(a.batch) && Object.isFrozen(a.upstream))
})

t.test('reads every setting from its environment variable', async (t) => {
  const options = configFromEnv({
    PORT: '8080',
    HOST: '0.0.0.0',
    COMETAPI_BASE_URL: 'http://127.0.0.1:9/proxy/',
    COMETAPI_KEY: 'sk-1',
    BATCH_WINDOW_MS: '5',
    BATCH_MAX_IDS: '50',
    CACHE_TTL_MS: '0',
    CACHE_MAX_ENTRIES: '7',
    UPSTREAM_TIMEOUT_MS: '1500',
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    EMPTY_IS_UNSET: ''
  })
  const config = normalizeConfig(options)
  t.equal(config.port, 8080)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.upstream.baseUrl, 'http://127.0.0.1:9/proxy', 'a trailing slash is dropped, the path prefix kept')
  t.equal(config.upstream.key, 'sk-1')
  t.same(config.batch, { ...config.batch, windowMs: 5, maxIds: 50 })
  t.equal(config.cache.ttlMs, 0)
  t.equal(config.cache.maxEntries, 7)
  t.equal(config.upstream.timeoutMs, 1500)
  t.equal(config.logLevel, 'warn')
  t.equal(config.production, true)
})

t.test('an invalid variable stops start-up with a message naming it', async (t) => {
  t.throws(() => configFromEnv({ BATCH_MAX_IDS: 'lots' }), /Invalid environment variable BATCH_MAX_IDS: expected an integer from 1 to 10000, got "lots"/)
  t.throws(() => configFromEnv({ PORT: '70000' }), /PORT/)
  t.throws(() => configFromEnv({ CACHE_TTL_MS: '-1' }), /CACHE_TTL_MS/)
  t.throws(() => configFromEnv({ COMETAPI_BASE_URL: 'ftp://x' }), /COMETAPI_BASE_URL: expected an http\(s\) URL/)
  t.throws(() => configFromEnv({ LOG_LEVEL: 'loud' }), /LOG_LEVEL: expected one of fatal, error/)
})

t.test('an invalid option names the option and the bad value', async (t) => {
  t.throws(() => normalizeConfig({ batch: { maxIds: 0 } }), /Invalid option batch.maxIds: expected an integer from 1 to 10000, got 0/)
  t.throws(() => normalizeConfig({ cache: { ttlMs: 1.5 } }), /Invalid option cache.ttlMs/)
  t.throws(() => normalizeConfig({ upstream: { baseUrl: 'not a url' } }), /Invalid option upstream.baseUrl/)
})

t.test('never echoes the CometAPI key in a config error', async (t) => {
  t.throws(() => normalizeConfig({ upstream: { key: '' } }), /Invalid option upstream.key: expected a non-empty string, got \(hidden\)/)
  t.throws(() => configFromEnv({ COMETAPI_KEY: 'sk-1', UPSTREAM_AUTH: 'sometimes' }), /UPSTREAM_AUTH/)
})

t.test('never echoes the user or password of a base URL in a config error', async (t) => {
  let message = ''
  try { configFromEnv({ COMETAPI_BASE_URL: 'https://user:s3cretP4ss@proxy.example' }) } catch (err) { message = (err as Error).message }
  t.match(message, /COMETAPI_BASE_URL: expected an http\(s\) URL, got "https:\/\/\(hidden\)@proxy.example"/)
  t.notMatch(message, /s3cretP4ss/)
})

t.test('the README documents every environment variable', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  for (const setting of SETTINGS) t.match(readme, `\`${setting.env}\``, `${setting.env} is in the README`)
})

t.test('REDIS_URL takes redis:// and rediss:// URLs and never echoes one', async (t) => {
  t.equal(normalizeConfig({ redis: { url: 'rediss://gw:s3cret@cache.internal:6380/0' } }).redis.url, 'rediss://gw:s3cret@cache.internal:6380/0')
  t.equal(normalizeConfig().redis.url, undefined)
  t.equal(normalizeConfig().redis.prefix, 'mjgw:')
  let message = ''
  try { configFromEnv({ REDIS_URL: 'http://gw:s3cret@cache.internal' }) } catch (err) { message = (err as Error).message }
  t.equal(message, 'Invalid environment variable REDIS_URL: expected a redis:// or rediss:// URL, got (hidden)')
})

t.test('TRUST_PROXY takes addresses, CIDR ranges and range names, and nothing that trusts every peer', async (t) => {
  t.equal(normalizeConfig().security.trustProxy, undefined, 'unset: the connection\'s peer is the client')
  t.strictSame(normalizeConfig(configFromEnv({ TRUST_PROXY: '10.0.0.0/8, loopback,192.168.1.7,fd00::/8' })).security.trustProxy,
    ['10.0.0.0/8', 'loopback', '192.168.1.7', 'fd00::/8'])
  t.strictSame(normalizeConfig({ security: { trustProxy: ['uniquelocal'] } }).security.trustProxy, ['uniquelocal'])
  for (const bad of ['true', '1', '*', '10.0.0.0/33', '10.0.0.0/8/1', 'balancer.internal', '10.0.0.1,', 'fd00::/129']) {
    t.throws(() => configFromEnv({ TRUST_PROXY: bad }),
      { message: `Invalid environment variable TRUST_PROXY: expected comma-separated addresses, CIDR ranges, loopback, linklocal or uniquelocal, got ${JSON.stringify(bad)}` }, bad)
  }
  t.throws(() => normalizeConfig({ security: { trustProxy: [] } }), /Invalid option security.trustProxy/)
})

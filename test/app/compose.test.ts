import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { SETTINGS } from '../../src/config.js'

/*
 * deploy/compose.yaml cannot be run here (no Docker engine on CI): this
 * checks what a typo would break, against the code that reads it.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const compose = parse(readFileSync(`${ROOT}deploy/compose.yaml`, 'utf8')) as {
  services: Record<string, { image?: string, build?: { context: string, dockerfile: string }, command?: string[], environment?: Record<string, string>, deploy?: { replicas?: number }, volumes?: string[], depends_on?: unknown }>
}
const ENV = new Set(SETTINGS.map((s) => s.env))
const gateways = Object.entries(compose.services).filter(([, s]) => s.build !== undefined)

t.test('every variable set on a gateway is in the configuration table', async (t) => {
  t.ok(gateways.length > 0, 'a gateway service, built from the Dockerfile')
  for (const [name, service] of gateways) {
    t.equal(service.build!.dockerfile, 'Dockerfile')
    t.ok(existsSync(`${ROOT}deploy/${service.build!.context}/Dockerfile`), `${name} builds the project's Dockerfile`)
    const unknown = Object.keys(service.environment ?? {}).filter((env) => !ENV.has(env))
    t.strictSame(unknown, [], `${name} sets only known settings`)
  }
})

t.test('three replicas share one Redis-protocol server, behind a real load balancer', async (t) => {
  const replicas = gateways.reduce((n, [, s]) => n + (s.deploy?.replicas ?? 1), 0)
  t.equal(replicas, 3)
  const store = Object.entries(compose.services).find(([, s]) => /^(valkey\/valkey|redis):/.test(s.image ?? ''))
  t.ok(store, 'a Valkey or Redis service')
  const balancer = Object.entries(compose.services).find(([, s]) => /^(haproxy|nginx):/.test(s.image ?? ''))
  t.ok(balancer, 'an HAProxy or nginx service')

  const [storeName, storeService] = store!
  for (const [name, service] of gateways) {
    const env = service.environment!
    const url = new URL(env.REDIS_URL!.replace(/\$\{[^}]+\}/g, 'secret'))
    t.equal(url.hostname, storeName, `${name} reaches the store by its service name`)
    t.match(url.protocol, /^rediss?:$/)
    // The ACL user the gateway logs in as exists, and may touch exactly the gateway's prefix.
    const acl = storeService.command!.join(' ')
    t.match(acl, new RegExp(`--user ${url.username} on `), `the ACL user ${url.username} is defined`)
    t.match(acl, /--user default off/, 'the default user is off')
    const prefix = env.REDIS_PREFIX ?? SETTINGS.find((s) => s.env === 'REDIS_PREFIX')!.default
    t.ok(acl.includes(`~${prefix}*`) && acl.includes(`&${prefix}*`), 'its keys and channels are the REDIS_PREFIX ones')
    for (const secret of ['COMETAPI_KEY', 'GATEWAY_API_KEYS', 'METRICS_TOKEN']) {
      t.match(env[secret], /^\$\{[A-Z_]+:\?.+\}$/, `${secret} comes from the operator's environment, never the file`)
    }
    t.equal(env.HOST, '0.0.0.0')
  }

  const [, balancerService] = balancer!
  const mount = balancerService.volumes!.find((v) => v.startsWith('./'))!
  const config = readFileSync(`${ROOT}deploy/${mount.split(':')[0]!.slice(2)}`, 'utf8')
  const port = gateways[0]![1].environment!.PORT
  t.match(config, new RegExp(`server-template \\w+ 3 ${gateways[0]![0]}:${port} check`), 'the balancer knows the three replicas on their port')
  t.match(config, /option httpchk GET \/readyz/, 'and checks their readiness')
  t.match(config, /timeout tunnel/, 'WebSocket subscriptions outlive the HTTP timeouts')
})

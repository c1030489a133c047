import Router from 'find-my-way'
import type { FastifyInstance } from 'fastify'

type RouterConfig = Router.Config<Router.HTTPVersion.V1>

/** A route that matches every path (CORS's `OPTIONS *`) says nothing about whether a path exists. */
const CATCH_ALL = new Set(['*', '/*'])

/**
 * Which methods each registered path answers, so that a request no route
 * took can be told apart: 405 (the path exists under other methods) or 404.
 * fastify's router only reports that nothing matched method and path
 * together, so every route is also entered, without a handler, in a second
 * find-my-way router built with fastify's own routing options.
 */
export class RouteMethods {
  readonly #router: Router.Instance<Router.HTTPVersion.V1>
  readonly #methods = new Set<Router.HTTPMethod>()

  constructor (config: RouterConfig) {
    this.#router = Router(config)
  }

  /** fastify's routing options as find-my-way reads them, so both routers match the same paths. */
  static configOf (app: FastifyInstance): RouterConfig {
    // The initial config holds plain settings only (slashes, case, parameter length), no functions.
    const { routerOptions, caseSensitive } = app.initialConfig
    return { ...routerOptions, caseSensitive } as RouterConfig
  }

  add (method: string | readonly string[], url: string): void {
    for (const m of typeof method === 'string' ? [method] : method) {
      const httpMethod = m as Router.HTTPMethod
      // The same method and path twice (routes told apart by constraints) is one entry here.
      if (this.#router.hasRoute(httpMethod, url)) continue
      this.#router.on(httpMethod, url, noop, { catchAll: CATCH_ALL.has(url) })
      this.#methods.add(httpMethod)
    }
  }

  /** The methods with a route at this URL, sorted; none when only a catch-all route matches. */
  allowed (url: string): string[] {
    const allowed: string[] = []
    let known = false
    for (const method of this.#methods) {
      const found = this.#router.find(method, url)
      if (found === null) continue
      allowed.push(method)
      known ||= (found.store as { catchAll: boolean }).catchAll === false
    }
    return known ? allowed.sort() : []
  }
}

function noop (): void {}

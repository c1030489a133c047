import { contentVersion } from '../core/credentials.js'

/** JSON safe inside a `<script type="application/json">` block: no `</script>` or `<!--` can end it early. */
export function jsonForHtml (value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')
}

/** The cache-busting token of a page asset (`?v=`): a short hash of its content. */
export function assetVersion (body: string | Buffer): string {
  return contentVersion(body, 12)
}

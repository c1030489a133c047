/**
 * The Midjourney task object as CometAPI (new-api's relay) sends it.
 * See docs/upstream.md: unset strings are `""`, unset times `0`,
 * `buttons`/`properties` may be `null`, and extra fields may appear and must
 * be passed through untouched on the drop-in routes.
 */
export interface UpstreamButton {
  customId?: string | null
  emoji?: string | null
  label?: string | null
  style?: number | null
  type?: number | null
  [extra: string]: unknown
}

export interface UpstreamTask {
  id: string
  action?: string | null
  status?: string | null
  progress?: string | null
  prompt?: string | null
  promptEn?: string | null
  description?: string | null
  failReason?: string | null
  imageUrl?: string | null
  state?: string | null
  /** Epoch ms; `0` when unset, or `""` from some proxies. */
  submitTime?: number | '' | null
  startTime?: number | '' | null
  finishTime?: number | '' | null
  properties?: Record<string, unknown> | null
  buttons?: UpstreamButton[] | null
  [extra: string]: unknown
}

/** Upstream's error body: `{description, type: "upstream_error", code}`. */
export interface UpstreamErrorBody {
  description: string
  type: string
  code: number
}

/** Upstream's submit answer. Code 1 is success; 21 and 22 also count as success. */
export interface UpstreamSubmitResult {
  code: number
  description: string
  result: string | null
  properties?: Record<string, unknown> | null
}

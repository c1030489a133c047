#!/bin/sh
# The README's curl walk-through, run as-is by test/app/curl-walkthrough.test.ts
# against `npm run dev` in demo mode (no COMETAPI_KEY: seeded simulator tasks).

# Liveness and readiness: open even when client keys are on.
curl -fsS http://127.0.0.1:3000/healthz
curl -fsS http://127.0.0.1:3000/readyz

# Two seeded tasks in request order (a SUCCESS and a FAILURE); an unknown id would be null.
curl -fsS 'http://127.0.0.1:3000/v1/tasks?ids=1700000000000101,1700000120000303'

# One task, with the response headers: x-cache says hit, miss or stale.
curl -fsS -i http://127.0.0.1:3000/v1/tasks/1700000000000101

# An unknown task is a 404 with a coded JSON body; this prints just the status.
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:3000/v1/tasks/1700000000000999

# GraphQL over POST: the same batched lookup, null for the unknown id.
curl -fsS http://127.0.0.1:3000/graphql -H 'content-type: application/json' -d '{"query":"query ($ids: [ID!]!) { tasks(ids: $ids) { id status progress final } }","variables":{"ids":["1700000000000101","1700000000000999"]}}'

# GraphQL over GET.
curl -fsS -G http://127.0.0.1:3000/graphql --data-urlencode 'query={ task(id: "1700000120000303") { id status failReason } }'

# Drop-in CometAPI routes: an existing client only changes its base URL.
curl -fsS http://127.0.0.1:3000/mj/task/list-by-condition -H 'content-type: application/json' -d '{"ids":["1700000000000101","1700000180000404"]}'
curl -fsS http://127.0.0.1:3000/mj/task/1700000180000404/fetch

# Live updates as Server-Sent Events; both tasks are final, so the stream ends with `event: done`.
curl -fsS -N 'http://127.0.0.1:3000/v1/tasks/stream?ids=1700000000000101,1700000120000303'

# Submit a new task (relayed to upstream, here the simulator); `result` is its id.
curl -fsS http://127.0.0.1:3000/mj/submit/imagine -H 'content-type: application/json' -d '{"prompt":"a red fox in fresh snow, watercolor"}'

// GET /metrics: the Prometheus text format of the gateway's metrics (src/metrics.ts), behind the
// admin token like the rest of the admin listener.
import type { Metrics } from '../metrics.ts';
import type { ExtraRoute } from './http.ts';

export function metricsRoute(metrics: Metrics): ExtraRoute {
  return {
    method: 'GET',
    path: '/metrics',
    doc: {
      operationId: 'getMetrics',
      summary: 'Prometheus metrics in the text exposition format',
      tags: ['metrics'],
      responses: { 200: { description: 'The metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
    handle: async () => ({ status: 200, text: await metrics.text(), contentType: metrics.contentType }),
  };
}

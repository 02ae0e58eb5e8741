// The admin API's route table: every endpoint file's routes. openapi.ts documents each of them
// (test/admin-openapi.test.ts checks both ways); server.ts adds GET /admin/v1/openapi.json and
// the routes mounted from outside (createAdminServer's `extra`).
import { accountRoutes } from './accounts.ts';
import { auditRoutes } from './audit.ts';
import { configRoutes } from './config.ts';
import { creditRoutes } from './credits.ts';
import type { AdminRoute } from './http.ts';
import { keyRoutes } from './keys.ts';
import { notificationRoutes } from './notifications.ts';
import { requestRoutes } from './requests.ts';
import { usageRoutes } from './usage.ts';
import { webhookRoutes } from './webhooks.ts';

export const ADMIN_ROUTES: readonly AdminRoute[] = [
  ...accountRoutes, ...keyRoutes, ...creditRoutes, ...usageRoutes, ...requestRoutes, ...webhookRoutes, ...notificationRoutes, ...configRoutes, ...auditRoutes,
];

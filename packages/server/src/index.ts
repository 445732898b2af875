// Public surface of server.
export {
  DEFAULT_MAX_BODY,
  Router,
  defaultErrorFormatter,
  json,
  listen,
  requestListener,
  text,
  type ErrorFormatter,
  type Request,
  type Response,
  type RunningServer,
} from './http.ts';
export { serveServices, type Service } from './service.ts';

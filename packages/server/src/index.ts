// Public surface of server.
export {
  DEFAULT_MAX_BODY,
  REQUEST_JSON_LIMITS,
  Router,
  decodeUriComponentSafe,
  defaultErrorFormatter,
  json,
  listen,
  parseRequestJson,
  requestListener,
  requestUrl,
  text,
  type ErrorFormatter,
  type Request,
  type Response,
  type RunningServer,
} from './http.ts';
export { serveServices, withService, type Service } from './service.ts';

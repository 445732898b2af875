// Public surface of policy: policy-controller's resources and the admission decisions over them.
export { celAllows, compileCel, evaluateCel, MAX_CEL_SOURCE, type CelProgram } from './cel.ts';

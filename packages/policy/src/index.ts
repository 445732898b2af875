// Public surface of policy: policy-controller's resources and the admission decisions over them.
export {};

// Public surface of admission: the webhook server and its policy sources.
export {};

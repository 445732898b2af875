// ECDSA verification over a digest for Waxseal's transparency log (hashedrekord entries carry
// the artifact's digest, not the artifact). node:crypto can only verify signatures over
// messages it hashes itself, so this addon calls OpenSSL's own ECDSA_do_verify on the digest:
// the verification is OpenSSL's, nothing here does curve arithmetic.
//
// The OpenSSL used is the one inside the node binary (no second libcrypto is linked; every
// symbol is bound at load time, see binding.gyp). EC_KEY/ECDSA_do_verify are deprecated in
// OpenSSL 3 in favour of EVP_PKEY, but the EVP route imports each key through the provider
// decoders (~30 us); this one sets a point on a reused EC_KEY (~2 us).
//
// One call verifies a batch of packed jobs, so crossing from JavaScript costs once per batch.
// Job layout, F = field size in bytes (32, 48, 66):
//   Qx[F] Qy[F] r[F] s[F] digestLength[1] digest[64]      (big-endian, zero-padded on the left)
// The result holds one byte per job: 1 when the signature verifies, 0 otherwise.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIGEST 64
#define CURVES 3

typedef struct {
  int nid;
  size_t field;
  EC_GROUP *group;
  EC_KEY *key;
  EC_POINT *point;
  BIGNUM *x, *y;
  BN_CTX *ctx;
} curve_state;

// One per Node.js environment (main thread and each worker load their own).
typedef struct {
  curve_state curves[CURVES];
} addon_state;

static const int CURVE_BITS[CURVES] = {256, 384, 521};
static const int CURVE_NIDS[CURVES] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
static const size_t CURVE_FIELD[CURVES] = {32, 48, 66};

static void free_curve(curve_state *c) {
  EC_POINT_free(c->point);
  EC_KEY_free(c->key);
  EC_GROUP_free(c->group);
  BN_free(c->x);
  BN_free(c->y);
  BN_CTX_free(c->ctx);
  memset(c, 0, sizeof(*c));
}

static int init_curve(curve_state *c, int index) {
  if (c->group != NULL) return 1;
  c->nid = CURVE_NIDS[index];
  c->field = CURVE_FIELD[index];
  c->group = EC_GROUP_new_by_curve_name(c->nid);
  c->key = EC_KEY_new_by_curve_name(c->nid);
  c->point = c->group ? EC_POINT_new(c->group) : NULL;
  c->x = BN_new();
  c->y = BN_new();
  c->ctx = BN_CTX_new();
  if (!c->group || !c->key || !c->point || !c->x || !c->y || !c->ctx) {
    free_curve(c);
    return 0;
  }
  return 1;
}

static void finalize_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  addon_state *s = data;
  for (int i = 0; i < CURVES; i++) free_curve(&s->curves[i]);
  free(s);
}

// Verifies one packed job. Every failure (point off the curve, coordinates out of range,
// r or s out of range, allocation) is "does not verify".
static int verify_job(curve_state *c, const unsigned char *job) {
  const size_t f = c->field;
  const unsigned char dlen = job[4 * f];
  if (dlen == 0 || dlen > MAX_DIGEST) return 0;
  if (!BN_bin2bn(job, (int)f, c->x) || !BN_bin2bn(job + f, (int)f, c->y)) return 0;
  // Coordinates must be canonical field elements; set_affine_coordinates checks the curve
  // equation. With cofactor 1 (all three curves), on-curve and finite means a valid key.
  const BIGNUM *p = EC_GROUP_get0_field(c->group);
  if (p == NULL || BN_cmp(c->x, p) >= 0 || BN_cmp(c->y, p) >= 0) return 0;
  if (EC_POINT_set_affine_coordinates(c->group, c->point, c->x, c->y, c->ctx) != 1) return 0;
  if (EC_KEY_set_public_key(c->key, c->point) != 1) return 0;
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(job + 2 * f, (int)f, NULL);
  BIGNUM *s = BN_bin2bn(job + 3 * f, (int)f, NULL);
  if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
    ECDSA_SIG_free(sig);
    BN_free(r);
    BN_free(s);
    return 0;
  }
  // ECDSA_do_verify rejects r, s outside [1, n-1] and applies bits2int to the digest.
  const int ok = ECDSA_do_verify(job + 4 * f + 1, dlen, sig, c->key);
  ECDSA_SIG_free(sig);
  return ok == 1;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG", message);
  return NULL;
}

// verify(curveBits: 256 | 384 | 521, jobs: Uint8Array, count: number): Uint8Array
static napi_value verify(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) return throw_type(env, "verify(curveBits, jobs, count)");
  int32_t bits = 0;
  uint32_t count = 0;
  if (napi_get_value_int32(env, argv[0], &bits) != napi_ok) return throw_type(env, "curveBits must be 256, 384 or 521");
  int index = -1;
  for (int i = 0; i < CURVES; i++)
    if (CURVE_BITS[i] == bits) index = i;
  if (index < 0) return throw_type(env, "curveBits must be 256, 384 or 521");
  bool is_typed = false;
  napi_is_typedarray(env, argv[1], &is_typed);
  if (!is_typed) return throw_type(env, "jobs must be a Uint8Array");
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) return throw_type(env, "jobs must be a Uint8Array");
  if (napi_get_value_uint32(env, argv[2], &count) != napi_ok) return throw_type(env, "count must be a non-negative integer");

  addon_state *state = NULL;
  if (napi_get_instance_data(env, (void **)&state) != napi_ok || state == NULL) return throw_type(env, "addon not initialised");
  curve_state *c = &state->curves[index];
  if (!init_curve(c, index)) {
    napi_throw_error(env, "ERR_NATIVE", "OpenSSL could not set up the curve");
    return NULL;
  }
  const size_t job_size = 4 * c->field + 1 + MAX_DIGEST;
  if ((size_t)count > length / job_size) return throw_type(env, "jobs is shorter than count jobs");

  napi_value result;
  void *out = NULL;
  if (napi_create_buffer(env, count, &out, &result) != napi_ok) return NULL;
  const unsigned char *jobs = data;
  unsigned char *ok = out;
  for (uint32_t i = 0; i < count; i++) ok[i] = (unsigned char)verify_job(c, jobs + (size_t)i * job_size);
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  addon_state *state = calloc(1, sizeof(addon_state));
  if (state == NULL || napi_set_instance_data(env, state, finalize_state, NULL) != napi_ok) {
    free(state);
    napi_throw_error(env, "ERR_NATIVE", "out of memory");
    return NULL;
  }
  napi_value fn;
  if (napi_create_function(env, "verify", NAPI_AUTO_LENGTH, verify, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "verify", fn) != napi_ok) return NULL;
  napi_value size;
  napi_create_uint32(env, MAX_DIGEST, &size);
  napi_set_named_property(env, exports, "maxDigest", size);
  return exports;
}

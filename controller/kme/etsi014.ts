// ETSI GS QKD 014 V1.1.1 (2019-02) data formats (clause 6) as TypeScript types and zod schemas, shared by the
// emulated KMEs (request validation) and the client (response validation). Field names are the standard's, verbatim.
import { z } from 'zod';

export const API_PREFIX = '/api/v1/keys';

/** Key IDs are UUIDs (clause 6.3: "key_ID: ID of the key: UUID format"). Any case, hyphenated. */
export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Clause 6.1 Status data format. */
export interface Status {
  source_KME_ID: string;
  target_KME_ID: string;
  master_SAE_ID: string;
  slave_SAE_ID: string;
  key_size: number;
  stored_key_count: number;
  max_key_count: number;
  max_key_per_request: number;
  max_key_size: number;
  min_key_size: number;
  max_SAE_ID_count: number;
  status_extension?: unknown;
}

/** Clause 6.2 Key request data format (body of POST enc_keys). */
export interface KeyRequest {
  number?: number;
  size?: number;
  additional_slave_SAE_IDs?: string[];
  extension_mandatory?: Record<string, unknown>[];
  extension_optional?: Record<string, unknown>[];
}

/** Clause 6.3 Key container data format; `key` is base64. */
export interface KeyContainer {
  keys: { key_ID: string; key_ID_extension?: unknown; key: string; key_extension?: unknown }[];
  key_container_extension?: unknown;
}

/** Clause 6.4 Key IDs data format (body of POST dec_keys). */
export interface KeyIds {
  key_IDs: { key_ID: string; key_ID_extension?: unknown }[];
  key_IDs_extension?: unknown;
}

/** Clause 6.5 Error data format; `details` are name/value pairs. */
export interface EtsiError {
  message: string;
  details?: Record<string, unknown>[];
}

const nonNegInt = z.number().int().nonnegative();

export const StatusSchema = z.object({
  source_KME_ID: z.string(),
  target_KME_ID: z.string(),
  master_SAE_ID: z.string(),
  slave_SAE_ID: z.string(),
  key_size: nonNegInt,
  stored_key_count: nonNegInt,
  max_key_count: nonNegInt,
  max_key_per_request: nonNegInt,
  max_key_size: nonNegInt,
  min_key_size: nonNegInt,
  max_SAE_ID_count: nonNegInt,
  status_extension: z.unknown().optional(),
});

export const KeyContainerSchema = z.object({
  keys: z.array(z.object({
    key_ID: z.string().min(1),
    key_ID_extension: z.unknown().optional(),
    key: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64'),
    key_extension: z.unknown().optional(),
  })),
  key_container_extension: z.unknown().optional(),
});

export const ErrorSchema = z.object({
  message: z.string(),
  details: z.array(z.record(z.string(), z.unknown())).optional(),
});

const extensionList = z.array(z.record(z.string(), z.unknown()));

/** Request schemas are strict: an unknown field is a 400 (a typo must not silently fall back to a default). */
export const KeyRequestSchema = z.strictObject({
  number: z.number().int().min(1).optional(),
  size: z.number().int().min(1).optional(),
  additional_slave_SAE_IDs: z.array(z.string().min(1)).optional(),
  extension_mandatory: extensionList.optional(),
  extension_optional: extensionList.optional(),
});

export const KeyIdsSchema = z.strictObject({
  key_IDs: z.array(z.strictObject({
    key_ID: z.string().regex(UUID_RE, 'key_ID must be a UUID'),
    key_ID_extension: z.unknown().optional(),
  })).min(1),
  key_IDs_extension: z.unknown().optional(),
});

const intParam = z.string().regex(/^[0-9]{1,9}$/, 'a positive decimal integer').transform(Number).pipe(z.number().int().min(1));

/** GET enc_keys query: number, size (each at most once). */
export const EncKeysQuerySchema = z.strictObject({
  number: intParam.optional(),
  size: intParam.optional(),
});

/** GET dec_keys query: key_ID (the standard gives one; repeating it asks for several). */
export const DecKeysQuerySchema = z.strictObject({
  key_ID: z.array(z.string().regex(UUID_RE, 'key_ID must be a UUID')).min(1, 'key_ID is required'),
});

/** Zod issues as the standard's `details` name/value pairs: { "<field path>": "<problem>" }. */
export function zodDetails(err: z.ZodError): Record<string, unknown>[] {
  return err.issues.map((i) => ({ [i.path.length ? i.path.join('.') : '(body)']: i.message }));
}

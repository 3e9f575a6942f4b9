// What every scenario needs: clients pointed at the server with explicit credentials, the
// SDK's errors as plain data, and results as JSON (Uint8Array and Date kept recognisable).
import * as kms from "@aws-sdk/client-kms";
import { STSClient } from "@aws-sdk/client-sts";

function clientConfig(server, creds) {
  return {
    endpoint: server.endpoint,
    region: server.region,
    // Explicit credentials: the default chain would end at the instance-metadata address.
    credentials: {
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
    },
    maxAttempts: 1, // an error is the server's answer, not a retried one
  };
}

// `options`: more client configuration (maxAttempts, systemClockOffset, ...).
export function kmsClient(server, creds = server.admin, options = {}) {
  return new kms.KMSClient({ ...clientConfig(server, creds), ...options });
}

export function stsClient(server, creds) {
  return new STSClient(clientConfig(server, creds));
}

// The error the SDK raised, as data. `modeled`: an instance of the client's exception class
// of that name (NotFoundException, ... of the KMS model); `service`: a KMSServiceException,
// which is what the SDK raises for the common errors the model leaves out
// (ValidationException, UnrecognizedClientException, ...), against AWS too.
export async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    const modeledClass = kms[err.name];
    return {
      name: err.name,
      message: err.message,
      modeled: typeof modeledClass === "function" && err instanceof modeledClass,
      service: err instanceof kms.KMSServiceException,
      fault: err.$fault,
      httpStatusCode: err.$metadata?.httpStatusCode,
      requestId: err.$metadata?.requestId,
      requestIdHeader: err.$response?.headers?.["x-amzn-requestid"],
    };
  }
  throw new Error("the call succeeded; it was meant to fail");
}

// JSON for the test: Uint8Array -> {"$bytes": base64}, Date -> {"$date": ISO 8601}, and the
// SDK's $metadata kept (requestId, httpStatusCode).
function encode(value) {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString("base64") };
  if (value instanceof Date) return { $date: value.toISOString() };
  if (Array.isArray(value)) return value.map(encode);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  }
  return value;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

// Run the scenario named on the command line with the JSON input on stdin; print its result.
export async function main(scenarios) {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`no scenario ${name}; known: ${Object.keys(scenarios)}`);
  const input = await readStdin();
  const result = await scenario(input);
  process.stdout.write(JSON.stringify(encode(result)));
}

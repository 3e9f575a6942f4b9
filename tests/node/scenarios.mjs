// Scenarios run by tests/compat/test_node_sdk.py: `node scenarios.mjs NAME < input.json`.
// Each drives a real server through the AWS SDK for JavaScript v3 and prints what it saw;
// the Python test asserts on it.
import { createVerify } from "node:crypto";
import * as kms from "@aws-sdk/client-kms";
import { AssumeRoleCommand } from "@aws-sdk/client-sts";
import { failure, kmsClient, main, stsClient } from "./harness.mjs";

const bytes = (text) => new TextEncoder().encode(text);
const text = (blob) => new TextDecoder().decode(blob);
const uuid = () => crypto.randomUUID();

async function keys({ server, owner }) {
  const client = kmsClient(server, owner);
  const created = await client.send(
    new kms.CreateKeyCommand({
      Description: "from the JavaScript SDK",
      Tags: [{ TagKey: "team", TagValue: "node" }],
    }),
  );
  const keyId = created.KeyMetadata.KeyId;
  const described = await client.send(new kms.DescribeKeyCommand({ KeyId: keyId }));
  const tags = await client.send(new kms.ListResourceTagsCommand({ KeyId: keyId }));
  const alias = `alias/node-${uuid()}`;
  await client.send(new kms.CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
  const aliases = await client.send(new kms.ListAliasesCommand({ KeyId: keyId }));
  const byAlias = await client.send(new kms.DescribeKeyCommand({ KeyId: alias }));
  // Two more keys, so that pages of one key take at least three requests.
  for (let i = 0; i < 2; i++) await client.send(new kms.CreateKeyCommand({}));
  const firstPage = await client.send(new kms.ListKeysCommand({ Limit: 1 }));
  const paged = [];
  let pages = 0;
  for await (const page of kms.paginateListKeys({ client, pageSize: 1 }, {})) {
    pages += 1;
    paged.push(...page.Keys.map((k) => k.KeyId));
  }
  const all = await client.send(new kms.ListKeysCommand({ Limit: 1000 }));
  return {
    created: created.KeyMetadata,
    createdMetadata: created.$metadata,
    described: described.KeyMetadata,
    tags: tags.Tags,
    alias,
    aliases: aliases.Aliases,
    byAlias: byAlias.KeyMetadata.KeyId,
    firstPage: {
      keys: firstPage.Keys.length,
      truncated: firstPage.Truncated,
      marker: typeof firstPage.NextMarker,
    },
    paged,
    pages,
    all: all.Keys.map((k) => k.KeyId),
  };
}

async function crypt({ server }) {
  const client = kmsClient(server);
  const key = (await client.send(new kms.CreateKeyCommand({}))).KeyMetadata;
  const other = (await client.send(new kms.CreateKeyCommand({}))).KeyMetadata;
  const context = { purpose: "node", "user id": "42", city: "Zürich" };
  const plaintext = bytes("attack at dawn ✓");
  const encrypted = await client.send(
    new kms.EncryptCommand({ KeyId: key.Arn, Plaintext: plaintext, EncryptionContext: context }),
  );
  const decrypted = await client.send(
    new kms.DecryptCommand({
      CiphertextBlob: encrypted.CiphertextBlob,
      EncryptionContext: context,
    }),
  );
  const dataKey = await client.send(
    new kms.GenerateDataKeyCommand({
      KeyId: key.KeyId,
      KeySpec: "AES_256",
      EncryptionContext: context,
    }),
  );
  const dataKeyBack = await client.send(
    new kms.DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob, EncryptionContext: context }),
  );
  const noPlaintext = await client.send(
    new kms.GenerateDataKeyWithoutPlaintextCommand({ KeyId: key.KeyId, NumberOfBytes: 16 }),
  );
  const noPlaintextBack = await client.send(
    new kms.DecryptCommand({ CiphertextBlob: noPlaintext.CiphertextBlob, KeyId: key.Arn }),
  );
  const reEncrypted = await client.send(
    new kms.ReEncryptCommand({
      CiphertextBlob: encrypted.CiphertextBlob,
      SourceEncryptionContext: context,
      DestinationKeyId: other.KeyId,
      DestinationEncryptionContext: { purpose: "moved" },
    }),
  );
  const reDecrypted = await client.send(
    new kms.DecryptCommand({
      CiphertextBlob: reEncrypted.CiphertextBlob,
      EncryptionContext: { purpose: "moved" },
    }),
  );
  const random = await client.send(new kms.GenerateRandomCommand({ NumberOfBytes: 64 }));
  return {
    key,
    other,
    encrypted: {
      keyId: encrypted.KeyId,
      algorithm: encrypted.EncryptionAlgorithm,
      isUint8Array: encrypted.CiphertextBlob instanceof Uint8Array,
    },
    decrypted: {
      keyId: decrypted.KeyId,
      plaintext: text(decrypted.Plaintext),
      isUint8Array: decrypted.Plaintext instanceof Uint8Array,
    },
    dataKey: { plaintext: dataKey.Plaintext, keyId: dataKey.KeyId, back: dataKeyBack.Plaintext },
    noPlaintext: { keys: Object.keys(noPlaintext).sort(), back: noPlaintextBack.Plaintext },
    reEncrypted: {
      sourceKeyId: reEncrypted.SourceKeyId,
      keyId: reEncrypted.KeyId,
      plaintext: text(reDecrypted.Plaintext),
      reDecryptedKeyId: reDecrypted.KeyId,
    },
    random: random.Plaintext,
  };
}

async function sign({ server }) {
  const client = kmsClient(server);
  const key = (
    await client.send(
      new kms.CreateKeyCommand({ KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY" }),
    )
  ).KeyMetadata;
  const message = bytes("signed by the JavaScript SDK");
  const signed = await client.send(
    new kms.SignCommand({
      KeyId: key.KeyId,
      Message: message,
      MessageType: "RAW",
      SigningAlgorithm: "ECDSA_SHA_256",
    }),
  );
  const verify = (m) =>
    client.send(
      new kms.VerifyCommand({
        KeyId: key.KeyId,
        Message: m,
        Signature: signed.Signature,
        SigningAlgorithm: "ECDSA_SHA_256",
      }),
    );
  const verified = await verify(message);
  const forged = await failure(verify(bytes("something else")));
  const publicKey = await client.send(new kms.GetPublicKeyCommand({ KeyId: key.Arn }));
  // The signature checks out with the public key alone, in node's own crypto (DER ECDSA).
  const local = createVerify("SHA256")
    .update(message)
    .verify(
      { key: Buffer.from(publicKey.PublicKey), format: "der", type: "spki" },
      signed.Signature,
    );
  return {
    key,
    signed: { keyId: signed.KeyId, algorithm: signed.SigningAlgorithm },
    verified: { valid: verified.SignatureValid, keyId: verified.KeyId },
    forged,
    publicKey: {
      keyId: publicKey.KeyId,
      keySpec: publicKey.KeySpec,
      keyUsage: publicKey.KeyUsage,
      signingAlgorithms: publicKey.SigningAlgorithms,
    },
    local,
  };
}

async function mac({ server }) {
  const client = kmsClient(server);
  const key = (
    await client.send(
      new kms.CreateKeyCommand({ KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC" }),
    )
  ).KeyMetadata;
  const message = bytes("mac me");
  const generated = await client.send(
    new kms.GenerateMacCommand({
      KeyId: key.KeyId,
      Message: message,
      MacAlgorithm: "HMAC_SHA_256",
    }),
  );
  const verify = (m) =>
    client.send(
      new kms.VerifyMacCommand({
        KeyId: key.KeyId,
        Message: m,
        Mac: generated.Mac,
        MacAlgorithm: "HMAC_SHA_256",
      }),
    );
  const verified = await verify(message);
  const forged = await failure(verify(bytes("mac you")));
  return {
    key,
    generated: { keyId: generated.KeyId, algorithm: generated.MacAlgorithm, mac: generated.Mac },
    verified: { valid: verified.MacValid, keyId: verified.KeyId, algorithm: verified.MacAlgorithm },
    forged,
  };
}

async function deletion({ server }) {
  const client = kmsClient(server);
  const key = (await client.send(new kms.CreateKeyCommand({}))).KeyMetadata;
  const scheduled = await client.send(
    new kms.ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }),
  );
  const pending = (await client.send(new kms.DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata;
  const refused = await failure(
    client.send(new kms.EncryptCommand({ KeyId: key.KeyId, Plaintext: bytes("x") })),
  );
  const cancelled = await client.send(new kms.CancelKeyDeletionCommand({ KeyId: key.KeyId }));
  const after = (await client.send(new kms.DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata;
  return { key, scheduled, pending, refused, cancelled, after };
}

async function errors({ server, stranger }) {
  const client = kmsClient(server);
  const key = (await client.send(new kms.CreateKeyCommand({}))).KeyMetadata;
  const missing = `arn:aws:kms:${server.region}:${key.AWSAccountId}:key/${uuid()}`;
  const blob = (
    await client.send(
      new kms.EncryptCommand({
        KeyId: key.KeyId,
        Plaintext: bytes("x"),
        EncryptionContext: { a: "1" },
      }),
    )
  ).CiphertextBlob;
  const notFound = await failure(client.send(new kms.DescribeKeyCommand({ KeyId: missing })));
  const invalidCiphertext = await failure(
    client.send(new kms.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { a: "2" } })),
  );
  const validation = await failure(
    client.send(new kms.GenerateRandomCommand({ NumberOfBytes: 2000 })),
  );
  const denied = await failure(
    kmsClient(server, stranger).send(
      new kms.EncryptCommand({ KeyId: key.Arn, Plaintext: bytes("x") }),
    ),
  );
  await client.send(new kms.DisableKeyCommand({ KeyId: key.KeyId }));
  const disabled = await failure(
    client.send(new kms.EncryptCommand({ KeyId: key.KeyId, Plaintext: bytes("x") })),
  );
  return { key, missing, notFound, invalidCiphertext, validation, denied, disabled };
}

async function session({ server, caller, roleArn, keyArn }) {
  const assumed = await stsClient(server, caller).send(
    new AssumeRoleCommand({
      RoleArn: roleArn,
      RoleSessionName: "node-session",
      DurationSeconds: 900,
    }),
  );
  const c = assumed.Credentials;
  const client = kmsClient(server, {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
  });
  const encrypted = await client.send(
    new kms.EncryptCommand({ KeyId: keyArn, Plaintext: bytes("session data") }),
  );
  const decrypted = await client.send(
    new kms.DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob }),
  );
  const described = await client.send(new kms.DescribeKeyCommand({ KeyId: keyArn }));
  // The same access key without its token is not a valid credential.
  const withoutToken = await failure(
    kmsClient(server, { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey }).send(
      new kms.DescribeKeyCommand({ KeyId: keyArn }),
    ),
  );
  return {
    assumedRoleUser: assumed.AssumedRoleUser,
    accessKeyId: c.AccessKeyId,
    expiration: c.Expiration,
    plaintext: text(decrypted.Plaintext),
    keyState: described.KeyMetadata.KeyState,
    withoutToken,
  };
}

// What the SDK signs (recorded after its signer runs), and its clock-skew correction: a
// request signed an hour behind fails "Signature expired", and the SDK, reading the reply's
// Date header, signs the retry with the server's time.
async function wire({ server }) {
  const client = kmsClient(server);
  let sent;
  client.middlewareStack.addRelativeTo(
    (next) => async (args) => {
      sent = { ...args.request.headers };
      return next(args);
    },
    { relation: "after", toMiddleware: "awsAuthMiddleware", name: "recordSignedRequest" },
  );
  const listed = await client.send(new kms.ListKeysCommand({ Limit: 1 }));
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(sent.authorization)[1].split(";");
  const behind = (maxAttempts) =>
    kmsClient(server, server.admin, { systemClockOffset: -3600_000, maxAttempts });
  const expired = await failure(behind(1).send(new kms.ListKeysCommand({ Limit: 1 })));
  const corrected = await behind(2).send(new kms.ListKeysCommand({ Limit: 1 }));
  return {
    listed: listed.$metadata.httpStatusCode,
    signedHeaders,
    contentSha256: sent["x-amz-content-sha256"],
    expired,
    corrected: corrected.$metadata,
  };
}

await main({ keys, crypt, sign, mac, deletion, errors, session, wire });

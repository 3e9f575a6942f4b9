// Scenarios of tests/compat/test_quotas.py: `node quotas.mjs NAME < input.json`. The AWS SDK
// for JavaScript v3 against a server whose request quotas are low, as an application meets
// AWS KMS's throttling.
import * as kms from "@aws-sdk/client-kms";
import { failure, kmsClient, main } from "./harness.mjs";

// Use up the caller's DescribeKey quota with a client that does not retry (until the server
// throttles it), then call again with the SDK's standard retry strategy: it sees
// ThrottlingException as throttling, backs off and succeeds.
async function retried({ server, caller, keyId }) {
  const once = kmsClient(server, caller, { maxAttempts: 1 });
  let throttled = null;
  for (let i = 0; i < 50 && throttled === null; i++) {
    try {
      await once.send(new kms.DescribeKeyCommand({ KeyId: keyId }));
    } catch (err) {
      throttled = await failure(Promise.reject(err));
    }
  }
  const patient = kmsClient(server, caller, { maxAttempts: 10, retryMode: "standard" });
  const described = await patient.send(new kms.DescribeKeyCommand({ KeyId: keyId }));
  return { throttled, metadata: described.$metadata, keyId: described.KeyMetadata.KeyId };
}

await main({ retried });

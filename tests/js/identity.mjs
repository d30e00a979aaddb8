// The AWS SDK for JavaScript v3 with nothing but its default credential chain: from the container
// variables it fetches credentials itself. Prints {"first": ..., "second": ...} as one JSON line;
// with a number of seconds as argument, waits that long between the two calls.
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";

const client = new STSClient({ region: "us-east-1" });

async function identity() {
  const answer = await client.send(new GetCallerIdentityCommand({}));
  const credentials = await client.config.credentials();
  return { Account: answer.Account, Arn: answer.Arn, AccessKeyId: credentials.accessKeyId };
}

const pause = Number(process.argv[2] || 0);
const first = await identity();
let second = null;
if (pause > 0) {
  await new Promise((resolve) => setTimeout(resolve, pause * 1000));
  second = await identity();
}
console.log(JSON.stringify({ first, second }));

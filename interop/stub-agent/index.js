// Stand-in for @ziro-agent/agent: @ziro-agent/checkpoint-postgres imports only types from it, so nothing
// runs here.
module.exports = {};

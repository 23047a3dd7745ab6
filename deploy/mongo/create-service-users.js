// One MongoDB user per chat service, with readWrite on that service's database
// only (CONTRACT §7.5): the message service cannot read auth's password hashes.
// Compose runs this once, on the first start of an empty data volume
// (/docker-entrypoint-initdb.d); elsewhere run it as an administrator:
//   AUTH_MONGODB_PASSWORD=... MESSAGE_MONGODB_PASSWORD=... mongosh "$ADMIN_URL" deploy/mongo/create-service-users.js
const services = [
  ["chat_auth", "AUTH_MONGODB_PASSWORD"],
  ["chat_message", "MESSAGE_MONGODB_PASSWORD"],
];
for (const [name, variable] of services) {
  const password = process.env[variable];
  if (!password) {
    throw new Error(`${variable} is not set`);
  }
  const database = db.getSiblingDB(name);
  if (database.getUser(name)) {
    database.updateUser(name, { pwd: password, roles: [{ role: "readWrite", db: name }] });
  } else {
    database.createUser({ user: name, pwd: password, roles: [{ role: "readWrite", db: name }] });
  }
}

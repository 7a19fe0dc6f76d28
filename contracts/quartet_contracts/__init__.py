"""The contracts of Quartet: message schemas, their registry, the envelope, the topic catalogue, AsyncAPI."""

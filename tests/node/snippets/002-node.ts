// Document 002's Node.js / TypeScript example, verbatim (tests/node/council.test.js runs it).
import axios from 'axios';

const API_BASE = 'http://localhost:3000/api/v1';
const API_KEY = 'YOUR_API_KEY';

async function submitRequest(query: string, sessionId?: string) {
  const response = await axios.post(
    `${API_BASE}/requests`,
    { query, sessionId },
    {
      headers: {
        'Authorization': `Bearer ${API_KEY}`,
        'Content-Type': 'application/json'
      }
    }
  );
  return response.data;
}

async function getResponse(requestId: string) {
  const response = await axios.get(
    `${API_BASE}/requests/${requestId}`,
    {
      headers: {
        'Authorization': `Bearer ${API_KEY}`
      }
    }
  );
  return response.data;
}

// Usage
const { requestId } = await submitRequest('What is machine learning?');
console.log('Request ID:', requestId);

// Poll for completion
let result;
do {
  await new Promise(resolve => setTimeout(resolve, 1000));
  result = await getResponse(requestId);
} while (result.status === 'processing');

console.log('Response:', result.consensusDecision);

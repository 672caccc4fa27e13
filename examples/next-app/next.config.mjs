/** The smallest Next.js app that shows the custom-server recipe: static, ISR, dynamic, route handler. */
export default { poweredByHeader: false };

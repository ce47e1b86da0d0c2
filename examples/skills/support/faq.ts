/** One entry of the support FAQ. */
export interface FaqEntry {
  readonly id: string;
  readonly question: string;
  readonly answer: string;
  /** Extra words customers use for this topic. */
  readonly keywords: readonly string[];
}

/** The FAQ bundled with the example. */
export const FAQ: readonly FaqEntry[] = Object.freeze([
  {
    id: 'refunds',
    question: 'How do I get a refund?',
    answer:
      'Return the item unused within 30 days; the refund reaches your card 5 to 7 days after we receive it.',
    keywords: ['refund', 'money', 'back', 'return', 'reimburse'],
  },
  {
    id: 'shipping-time',
    question: 'How long does shipping take?',
    answer:
      'Standard shipping takes 2 to 4 working days; express delivers the next working day if ordered by 2 pm.',
    keywords: ['shipping', 'delivery', 'deliver', 'arrive', 'long', 'days', 'express'],
  },
  {
    id: 'password-reset',
    question: 'How do I reset my password?',
    answer: 'Use "Forgot password" on the sign-in page; the reset link in the email is valid for one hour.',
    keywords: ['password', 'reset', 'forgot', 'login', 'sign', 'account', 'locked'],
  },
  {
    id: 'order-tracking',
    question: 'How do I track my order?',
    answer: 'The shipping email has a tracking link; you can also see the status under "My orders".',
    keywords: ['track', 'tracking', 'order', 'status', 'where', 'parcel', 'package'],
  },
  {
    id: 'cancel-order',
    question: 'Can I cancel my order?',
    answer:
      'Orders can be cancelled from "My orders" until they are shipped; after that, return the item instead.',
    keywords: ['cancel', 'cancellation', 'order', 'mistake'],
  },
  {
    id: 'exchange-size',
    question: 'Can I exchange an item for another size?',
    answer: 'Yes: start a return and pick "exchange"; the new size ships as soon as the return is scanned.',
    keywords: ['exchange', 'size', 'fit', 'swap', 'small', 'large'],
  },
  {
    id: 'payment-methods',
    question: 'Which payment methods do you accept?',
    answer: 'Cards (Visa, Mastercard, Amex), PayPal and bank transfer.',
    keywords: ['payment', 'pay', 'card', 'paypal', 'visa', 'transfer'],
  },
  {
    id: 'international-shipping',
    question: 'Do you ship abroad?',
    answer: 'We ship to the EU, the UK and Switzerland; customs fees outside the EU are paid on delivery.',
    keywords: ['abroad', 'international', 'country', 'customs', 'ship', 'uk', 'eu'],
  },
]);
